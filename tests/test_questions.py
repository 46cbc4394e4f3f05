"""Checks for the evaluation question set in eval/questions.jsonl.

The answering system is extractive (it quotes sentences of the Chinese
article), so every evidence string and every answer key must occur verbatim
in the seed article.
"""

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "eval" / "questions.jsonl"
SEED_NAME = "mrinank-sharma-letter.zh.txt"
SHARED_SEEDS = Path("/work/shared/seeds")

KINDS = {"factual", "paraphrase", "multi", "followup", "unanswerable"}
LANGS = {"zh", "en"}
REQUIRED = {
    "id": str,
    "question": str,
    "lang": str,
    "kind": str,
    "evidence": list,
    "answer_keys": list,
    "answerable": bool,
}
OPTIONAL = {"history": list}
ID_RE = re.compile(r"^q\d{3,}$")
CJK_RE = re.compile(r"[\u3400-\u9fff]")
MIN_EVIDENCE_CHARS = 8
KEY_LEN = (2, 16)  # characters of a Chinese key; an English one may be half as long again
KEY_LEN_EN = (2, 24)


def _seed_path() -> Path:
    """The repo's seeds/ directory first, then the shared copy."""
    for folder in (REPO / "seeds", SHARED_SEEDS):
        if not folder.is_dir():
            continue
        preferred = folder / SEED_NAME
        if preferred.is_file():
            return preferred
        txts = sorted(folder.glob("*.txt"))
        if txts:
            return txts[0]
    pytest.fail(f"no seed article found in {REPO / 'seeds'} or {SHARED_SEEDS}")


def _load_lines() -> list[str]:
    return QUESTIONS.read_text(encoding="utf-8").splitlines()


def _load() -> list[dict]:
    return [json.loads(line) for line in _load_lines() if line.strip()]


SEED = _seed_path().read_text(encoding="utf-8")
LINES = _load_lines()
ITEMS = _load()


def _ids(items):
    return [str(q.get("id", i)) for i, q in enumerate(items)]


def _every(items: list[dict], check) -> None:
    """Run `check` on every question; fail once, listing every question that fails and why."""
    failures = []
    for i, q in enumerate(items):
        try:
            check(q)
        except (AssertionError, KeyError, TypeError) as e:
            failures.append(f"{q.get('id', i) if isinstance(q, dict) else i}: {type(e).__name__}: {e}")
    assert not failures, f"{len(failures)} question(s) fail:\n" + "\n".join(failures)


def test_file_has_no_blank_or_invalid_lines():
    assert LINES, "eval/questions.jsonl is empty"
    for n, line in enumerate(LINES, 1):
        assert line.strip(), f"line {n} is blank"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:  # pragma: no cover - message only
            pytest.fail(f"line {n} is not valid JSON: {exc}")
        assert isinstance(obj, dict), f"line {n} is not a JSON object"


def test_fields_and_types():
    _every(ITEMS, _one_fields_and_types)


def _one_fields_and_types(q):
    _check_fields(q, ID_RE)


def _check_fields(q: dict, id_re: re.Pattern) -> None:
    for field, typ in REQUIRED.items():
        assert field in q, f"missing field {field!r}"
        assert isinstance(q[field], typ), f"{field!r} should be {typ.__name__}"
    unknown = set(q) - set(REQUIRED) - set(OPTIONAL)
    assert not unknown, f"unknown fields {sorted(unknown)}"
    assert id_re.match(q["id"]), f"bad id {q['id']!r} (want e.g. {id_re.pattern})"
    assert q["question"].strip(), "empty question"
    assert q["lang"] in LANGS
    assert q["kind"] in KINDS
    assert all(isinstance(e, str) for e in q["evidence"])
    for group in q["answer_keys"]:
        assert isinstance(group, list) and group, "each answer_keys group is a non-empty list"
        assert all(isinstance(k, str) and k.strip() for k in group)
    if "history" in q:
        for turn in q["history"]:
            assert isinstance(turn, dict)
            assert set(turn) == {"role", "content"}, f"bad history turn {turn}"
            assert turn["role"] in {"user", "assistant"}
            assert isinstance(turn["content"], str) and turn["content"].strip()


def test_lang_matches_question():
    _every(ITEMS, _one_lang_matches_question)


def _one_lang_matches_question(q):
    _check_lang(q)


def _check_lang(q: dict) -> None:
    has_cjk = bool(CJK_RE.search(q["question"]))
    if q["lang"] == "zh":
        assert has_cjk, "lang 'zh' but the question has no Chinese characters"
    else:
        assert not has_cjk, "lang 'en' but the question contains Chinese characters"


def test_ids_unique():
    ids = [q["id"] for q in ITEMS]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"duplicate ids: {dupes}"


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def _turns(q: dict) -> tuple:
    return (*tuple(_norm(t["content"]) for t in q.get("history", [])), _norm(q["question"]))


def test_no_duplicate_questions():
    seen = {}
    for q in ITEMS:
        key = _turns(q)
        assert key not in seen, f"{q['id']} repeats {seen[key]}"
        seen[key] = q["id"]


HELDOUT_FILES = sorted((REPO / "eval").glob("heldout*.jsonl"))


@pytest.mark.parametrize("path", HELDOUT_FILES, ids=[p.name for p in HELDOUT_FILES])
def test_no_overlap_with_heldout(path):
    """Dev questions must not repeat a held-out question word for word."""
    held = {
        _norm(json.loads(line)["question"]) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    }
    clashes = [q["id"] for q in ITEMS if _norm(q["question"]) in held]
    assert not clashes, f"questions also in {path.name}: {clashes}"


HELDOUT_ID_RE = re.compile(r"^[a-z]\d{2,}$")  # one letter per set: h01, k01, m01


def test_there_are_heldout_sets():
    assert HELDOUT_FILES, "no eval/heldout*.jsonl: the held-out checks below would pass on nothing"


@pytest.mark.parametrize("path", HELDOUT_FILES, ids=[p.name for p in HELDOUT_FILES])
def test_heldout_schema(path):
    """A held-out set follows the dev set's schema, with its own id letter."""
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for q in items:
        _check_fields(q, HELDOUT_ID_RE)
        _check_lang(q)
        _check_consistency(q)
        if q["kind"] == "followup":
            _check_followup(q)
    assert len({q["id"] for q in items}) == len(items), f"{path.name}: duplicate ids"
    assert len({q["id"][0] for q in items}) == 1, f"{path.name}: ids should share one letter"


@pytest.mark.parametrize("path", HELDOUT_FILES, ids=[p.name for p in HELDOUT_FILES])
def test_heldout_gold_is_verbatim_in_seed(path):
    """A held-out set is scored like ours: its gold must match the article."""
    for line in path.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        assert q["answerable"] == bool(q["evidence"]) == bool(q["answer_keys"]), q["id"]
        for ev in q["evidence"]:
            assert ev in SEED, f"{path.name} {q['id']}: evidence not in the article: {ev!r}"
        for group in q["answer_keys"]:
            assert any(k in SEED for k in group), f"{path.name} {q['id']}: no key of {group} in the article"


def test_evidence_is_verbatim_in_seed():
    _every(ITEMS, _one_evidence_is_verbatim_in_seed)


def _one_evidence_is_verbatim_in_seed(q):
    for ev in q["evidence"]:
        assert len(ev) >= MIN_EVIDENCE_CHARS, f"evidence too short: {ev!r}"
        assert ev in SEED, f"evidence not found verbatim in the article: {ev!r}"


def test_answerable_consistency():
    _every(ITEMS, _one_answerable_consistency)


def _one_answerable_consistency(q):
    _check_consistency(q)


def _check_consistency(q: dict) -> None:
    has_ev = bool(q["evidence"])
    has_keys = bool(q["answer_keys"])
    assert q["answerable"] == has_ev, "answerable must equal bool(evidence)"
    assert q["answerable"] == has_keys, "answerable must equal bool(answer_keys)"
    assert (q["kind"] == "unanswerable") == (not q["answerable"]), (
        "kind 'unanswerable' if and only if answerable is false"
    )


RENDERED = "".join(
    "".join(json.loads(line)["rendering"].split()).lower()
    for line in (REPO / "seeds" / f"{SEED_NAME}.en.jsonl").read_text(encoding="utf-8").splitlines()
)


def _squash(key: str) -> str:
    return "".join(key.split()).lower()


def test_answer_keys_are_extractive():
    _every([q for q in ITEMS if q.get("answerable")], _one_answer_keys_are_extractive)


def _one_answer_keys_are_extractive(q):
    """Every group can be met by an answer quoting the article, and, for an
    English question, by one written from its English renderings; other
    alternatives (an English synonym the renderings do not use) are harmless."""
    for group in q["answer_keys"]:
        for key in group:
            low, high = KEY_LEN if CJK_RE.search(key) else KEY_LEN_EN
            assert low <= len(key) <= high, f"key length out of range: {key!r}"
        assert any(key in SEED or any(key in ev for ev in q["evidence"]) for key in group), (
            f"no answer key of {group} occurs in the article (answers are extractive)"
        )
        if q["lang"] == "en":
            assert any(_squash(key) in RENDERED for key in group), (
                f"no answer key of {group} is in the English renderings"
            )


def test_question_does_not_copy_evidence():
    _every(ITEMS, _one_question_does_not_copy_evidence)


def _one_question_does_not_copy_evidence(q):
    for ev in q["evidence"]:
        assert ev not in q["question"], "question copies its evidence verbatim"


def test_followups_have_history():
    _every([q for q in ITEMS if q.get("kind") == "followup"], _one_followups_have_history)


def _one_followups_have_history(q):
    _check_followup(q)


def _check_followup(q: dict) -> None:
    history = q.get("history")
    assert history, "a follow-up needs a non-empty history"
    assert history[0]["role"] == "user", "history should start with the user's first question"


def test_proportions():
    n = len(ITEMS)
    assert n >= 80, f"only {n} questions (need >= 80)"
    en = sum(q["lang"] == "en" for q in ITEMS)
    assert en * 3 >= n, f"English {en}/{n} is below one third"
    unans = sum(not q["answerable"] for q in ITEMS)
    assert unans * 100 >= 15 * n, f"unanswerable {unans}/{n} is below 15%"
    present = {q["kind"] for q in ITEMS}
    assert present == KINDS, f"missing kinds: {sorted(KINDS - present)}"
