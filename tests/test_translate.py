"""`python -m rag translate` against a scripted OpenAI-compatible server on loopback:
it fills in what is missing, resumes after a failure, and says plainly when
there is no model. The scripted "translation" is checkable by hand: EN<sentence>."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag import renderings
from rag.seeds import read_seed

from .conftest import rag
from .llm_server import Reply, ScriptedLLM

DOC = "小镇\n河边有一座石桥。桥建于 1902 年。\n每年春天,镇上举行龙舟赛。\n去年的冠军是东村队。\n"


def fake_translation(request: dict) -> str:
    prompt = request["messages"][-1]["content"]
    batch = re.search(r"<sentences>\n(.*?)\n</sentences>", prompt, re.S).group(1)
    return json.dumps([f"EN<{line.split('. ', 1)[1]}>" for line in batch.splitlines()], ensure_ascii=False)


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "town.txt").write_text(DOC, encoding="utf-8")
    return folder


def _translate(seeds: Path, url: str = "", **env: str):
    llm = {"RAG_LLM_BASE_URL": url, "RAG_LLM_MODEL": "scripted" if url else ""}
    env.setdefault("RAG_MODEL_CACHE", str(seeds.parent / "cache"))  # this test's own translation cache
    return rag("translate", index=seeds.parent / "index", seeds=seeds, **llm, **env)


def test_without_a_model_it_says_how_to_configure_one_and_writes_nothing(seeds: Path) -> None:
    run = _translate(seeds)
    assert run.returncode == 1 and "No model is configured" in run.stderr and "RAG_LLM_BASE_URL" in run.stderr
    assert "Traceback" not in run.stderr and sorted(p.name for p in seeds.iterdir()) == ["town.txt"]


def test_missing_renderings_are_written_and_kept_in_step_with_the_seed(seeds: Path) -> None:
    with ScriptedLLM() as server:
        server.reply = Reply(fake_translation)
        run = _translate(seeds, server.url)
        assert run.returncode == 0, run.stderr
        path = seeds / "town.txt.en.jsonl"
        table = renderings.load(path)
        assert renderings.check(read_seed(seeds / "town.txt", seeds), table).complete
        assert table["桥建于 1902 年。"] == "EN<桥建于 1902 年。>" and table["小镇"] == "EN<小镇>"
        assert "town.txt.en.jsonl: 5 added" in run.stdout and "python -m rag build" in run.stdout
        # The prompt carries the sentences as numbered data.
        assert "1. 小镇" in server.requests[0]["messages"][-1]["content"]
        # A reviewer's correction stays; an edited sentence is translated anew, its old rendering dropped.
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        records[1]["rendering"] = "There is a stone bridge by the river."
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        (seeds / "town.txt").write_text(DOC.replace("东村队", "西村队"), encoding="utf-8")
        asked = len(server.requests)
        again = _translate(seeds, server.url)
        assert again.returncode == 0, again.stderr
        assert "1 added, 1 stale dropped" in again.stdout and len(server.requests) == asked + 1
        table = renderings.load(path)
        assert table["河边有一座石桥。"] == "There is a stone bridge by the river."
        assert "去年的冠军是西村队。" in table and "去年的冠军是东村队。" not in table


def test_an_interrupted_run_resumes_from_its_cache(seeds: Path) -> None:
    with ScriptedLLM() as server:

        def then_fail(request: dict) -> str:
            server.reply = Reply(status=500)  # every later request fails
            return fake_translation(request)

        server.reply = Reply(then_fail)
        run = _translate(seeds, server.url, RAG_TRANSLATE_BATCH="2")  # 5 units: batches of 2, 2, 1
        assert run.returncode == 1 and "could not translate" in run.stderr and "HTTP 500" in run.stderr
        assert "Traceback" not in run.stderr
        assert not (seeds / "town.txt.en.jsonl").exists()  # the file is written whole, or not at all
        server.reply = Reply(fake_translation)
        asked = len(server.requests)
        again = _translate(seeds, server.url, RAG_TRANSLATE_BATCH="2")
        assert again.returncode == 0, again.stderr
        assert len(server.requests) - asked == 2  # the 3 sentences the cache lacks, in batches of 2 and 1
        table = renderings.load(seeds / "town.txt.en.jsonl")
        assert renderings.check(read_seed(seeds / "town.txt", seeds), table).complete


def test_a_reply_that_does_not_fit_is_retried_one_sentence_at_a_time(seeds: Path) -> None:
    with ScriptedLLM() as server:
        # A whole batch comes back one item short; single sentences are fine, except the heading.
        def short(request: dict) -> str:
            items = json.loads(fake_translation(request))
            return json.dumps(items[:-1] if len(items) > 1 or items == ["EN<小镇>"] else items, ensure_ascii=False)

        server.reply = Reply(short)
        run = _translate(seeds, server.url)
        assert run.returncode == 1 and "4 added, 1 not translated (run again)" in run.stdout, run.stdout
        assert "小镇" not in renderings.load(seeds / "town.txt.en.jsonl")
