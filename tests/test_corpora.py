"""The training and evaluation corpora in `corpora/`: each text with its question set.

Every folder holds one document, its `questions.jsonl` (the schema of
`eval/README.md`, plus `source`) and a `source.json`; `corpora/README.md` lists
them with genre, language and licence. Gold must be checkable against the
text itself, or a score on it means nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.config import REPO

CORPORA = REPO / "corpora"
RENDERINGS = CORPORA / "renderings"  # kept apart from the corpus folders (corpora/README.md)
FOLDERS = sorted(p for p in CORPORA.iterdir() if p.is_dir() and p != RENDERINGS)
# Texts written on 2026-12-02 (corpora/README.md): no renderings were made for them.
WITHOUT_RENDERINGS = {
    "reservoir-drought-feature",
    "ferry-incident-report",
    "tea-house-oral-history",
    "allotment-society-newsletter",
    "family-recipe-braised-pork",
    "lighthouse-keepers-play-scene",
    "e-reader-product-review",
    "glaciologist-biography-sketch",
    "apartment-lease-rules",
    "office-move-email-thread",
    "night-market-short-story",
    "swift-migration-study",
    "clinic-outpatient-guide",
    "canal-history-lecture",
    "cycling-forum-thread",
    "village-baker-obituary",
}
KINDS = {"factual", "paraphrase", "multi", "followup", "unanswerable"}
_CJK = re.compile(r"[\u3400-\u9fff]")


def _items(folder: Path) -> list[dict]:
    lines = (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_every_corpus_is_in_the_manifest() -> None:
    manifest = (CORPORA / "README.md").read_text(encoding="utf-8")
    assert len(FOLDERS) >= 8
    for folder in FOLDERS:
        (text,) = [p for p in folder.glob("*.txt")]
        assert f"`{folder.name}`" in manifest, folder.name
        assert json.loads((folder / "source.json").read_text(encoding="utf-8"))["licence"]
        assert [p.name for p in folder.iterdir() if p.suffix in (".txt", ".md")] == [text.name]  # one document
        assert text.name.startswith(folder.name + ".") and text.suffixes[-2] in (".zh", ".en")


def test_ids_are_unique_across_corpora_and_the_letter() -> None:
    ids = [q["id"] for folder in FOLDERS for q in _items(folder)]
    letter = [json.loads(line)["id"] for p in (REPO / "eval").glob("*.jsonl") for line in p.open(encoding="utf-8")]
    assert len(ids) == len(set(ids)) and not set(ids) & set(letter)


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_gold_is_verbatim_in_its_own_text(folder: Path) -> None:
    """One test per text, listing every bad question at once."""
    (text_path,) = folder.glob("*.txt")
    text = text_path.read_text(encoding="utf-8")
    problems = []
    for q in _items(folder):
        qid, why = q.get("id"), []
        if q.get("source") != text_path.name:
            why.append("source")
        if q.get("kind") not in KINDS:
            why.append("kind")
        if q.get("lang") != ("zh" if _CJK.search(q.get("question", "")) else "en"):
            why.append("lang")
        answerable = bool(q.get("evidence")) and bool(q.get("answer_keys"))
        if q.get("answerable") is not answerable or answerable == (q.get("kind") == "unanswerable"):
            why.append("answerable")
        why += [f"evidence {e!r}" for e in q.get("evidence", []) if len(e) < 10 or e not in text]
        why += [f"key {k!r}" for group in q.get("answer_keys", []) for k in group if k not in text]
        if q.get("kind") == "followup" and (q.get("history") or [{}])[0].get("role") != "user":
            why.append("history")
        if any(e in q.get("question", "") for e in q.get("evidence", [])):
            why.append("question holds its evidence")
        if why:
            problems.append(f"{qid}: {', '.join(why)}")
    assert not problems, "\n".join(problems)
    kinds = {q["kind"] for q in _items(folder)}
    assert kinds == KINDS, f"{folder.name} lacks {KINDS - kinds}"


def test_each_texts_renderings_cover_it_exactly() -> None:
    from rag import renderings
    from rag.seeds import read_seed

    files = sorted(RENDERINGS.glob("*.jsonl"))
    named = {path.name.rsplit(".", 2)[0].rsplit(".", 2)[0] for path in files}
    assert {f.name for f in FOLDERS} - named == WITHOUT_RENDERINGS
    for path in files:
        (text,) = CORPORA.glob(f"*/{path.name.rsplit('.', 2)[0]}")
        cover = renderings.check(read_seed(text, text.parent), renderings.load(path))
        assert cover.complete, f"{path.name}: {len(cover.missing)} missing, {len(cover.orphaned)} orphaned"
