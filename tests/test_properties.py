"""Any input to `ask`: an answer, an abstention or a clear InputError, never a crash.

Property-based (`hypothesis`) on the real model and a copy of the real index:
arbitrary Unicode (lone surrogates included), control and invisible
characters, whitespace only, a 100,000-character question, odd histories and
non-text values. Whatever comes back must be printable as UTF-8 JSON, and the
pipeline must answer normal questions exactly as a fresh one does afterwards.
`RAG_HYPOTHESIS_EXAMPLES` raises the number of examples for a deeper local run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rag.citations import markers
from rag.errors import InputError
from rag.pipeline import Pipeline

from .conftest import rag

EXAMPLES = int(os.environ.get("RAG_HYPOTHESIS_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUESTIONS = ("why did he leave?", "他接下来打算做什么？", "Which poem ends the letter?", "How tall is Mount Everest?")

CONTROL = [chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]]
INVISIBLE = ["\u200b", "\u200d", "\u200e", "\u202e", "\u2028", "\u2060", "\ufeff", "\u3000", "\u00a0", "\ufffd"]
SURROGATES = [chr(c) for c in (0xD800, 0xDBFF, 0xDC00, 0xDFFF)]
any_char = st.characters(exclude_categories=())  # every code point, lone surrogates included
junk = st.text(st.sampled_from(CONTROL + INVISIBLE + SURROGATES), max_size=30)
whitespace = st.text(
    st.sampled_from([" ", "\t", "\n", "\r", "\u3000", "\u00a0", "\u2028", "\x0b", "\x0c"]), max_size=50
)
questions = st.one_of(
    st.text(any_char, max_size=300),
    junk,
    whitespace,
    st.builds(lambda q, a, b: a + q + b, st.sampled_from(QUESTIONS), junk, junk),  # a real question among junk
    st.builds(lambda q, cut: q[:cut], st.sampled_from(QUESTIONS), st.integers(0, 40)),
)
turn_values = st.one_of(st.none(), st.integers(), st.text(any_char, max_size=80), st.lists(st.integers(), max_size=3))
histories = st.lists(
    st.one_of(
        st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", ""]), "content": turn_values}),
        st.dictionaries(st.text(max_size=8), turn_values, max_size=3),
        turn_values,
    ),
    max_size=5,
)


def check(pipe: Pipeline, question: object, history: object = ()) -> str:
    """Ask, and assert the outcome is one of the three defined ones."""
    try:
        answer = pipe.ask(question, history)
    except InputError as e:
        assert str(e).strip(), "an InputError must say what is wrong"
        return "input error"
    data = answer.to_dict()
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # printable: no lone surrogate escapes
    assert answer.answer.strip()
    if answer.abstained:
        assert not answer.citations
        return "abstained"
    assert answer.citations
    assert set(markers(answer.answer)) <= {c.n for c in answer.citations}
    for c in answer.citations:
        assert c.quote in c.text
    return "answered"


@FUZZ
@given(question=questions)
def test_any_question_gets_an_answer_an_abstention_or_an_input_error(pipeline, question) -> None:
    event(check(pipeline, question))  # --hypothesis-show-statistics shows how often each outcome came


@FUZZ
@given(question=st.one_of(questions, st.sampled_from(QUESTIONS)), history=histories)
def test_any_history_is_tolerated(pipeline, question, history) -> None:
    event(check(pipeline, question, history))


@pytest.mark.parametrize("value", [None, 42, 3.5, b"why did he leave?", ["why?"], {"q": "why?"}])
def test_a_question_that_is_not_text_is_an_input_error(pipeline, value) -> None:
    with pytest.raises(InputError, match="must be text"):
        pipeline.ask(value)


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("x" * 100_000, "100,000 characters long"),
        ("他为什么离开？" * 14_286, "characters long"),
        (" " * 100_000, "characters long"),
        ("   \t\n\u3000 ", "empty"),
        ("\x00\x01\ufeff\u200b", "empty"),
        ("\ud800\udfff", "empty"),
    ],
)
def test_huge_empty_and_invisible_questions_are_clear_input_errors(pipeline, question, message) -> None:
    with pytest.raises(InputError, match=message):
        pipeline.ask(question)


def test_junk_around_a_real_question_does_not_change_the_answer(pipeline) -> None:
    clean = pipeline.ask("why did he leave?")
    noisy = pipeline.ask("\x00\ufeff why\u200b did he\x07 leave?\ud800\n\t")
    assert [c.quote for c in noisy.citations] == [c.quote for c in clean.citations]


def test_the_pipeline_still_answers_like_a_fresh_one(pipeline, settings) -> None:
    """After everything above (same session pipeline), nothing has leaked into its state."""
    fresh = Pipeline.load(settings, say=lambda _m: None)
    for q in QUESTIONS:
        a, b = pipeline.ask(q), fresh.ask(q)
        assert (a.answer, a.abstained) == (b.answer, b.abstained)
        assert [c.quote for c in a.citations] == [c.quote for c in b.citations]


def test_cli_questions_file_with_surrogates_and_control_characters(settings, tmp_path: Path) -> None:
    """JSON may spell lone surrogates (\\ud800): every line still gets its output line."""
    lines = [
        '{"id": "a", "question": "\\ud800"}',
        '{"id": "b", "question": "why did he leave?\\udfff"}',
        '{"id": "c\\udc00", "question": "\\u0000\\u0007 他为什么离开？"}',
        json.dumps({"id": "d", "question": "x" * 100_000}),
        '{"id": "e", "question": "   "}',
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = rag("ask", "--json", "--questions", str(path), index=settings.index_dir, text=False)
    assert run.returncode == 2, run.stderr  # some lines were bad input
    assert b"Traceback" not in run.stderr and b"unexpected" not in run.stderr
    rows = [json.loads(line) for line in run.stdout.decode("utf-8").splitlines()]
    assert len(rows) == len(lines)
    by_id = {row["id"].encode("utf-8", "surrogatepass"): row for row in rows}
    assert "error" in by_id[b"a"] and "error" in by_id[b"d"] and "error" in by_id[b"e"]
    assert by_id[b"b"]["citations"] and by_id["c\udc00".encode("utf-8", "surrogatepass")]["citations"]


def test_cli_question_with_invalid_utf8_bytes_in_argv(settings) -> None:
    run = rag(b"ask", b"--json", b"why did he leave?\xff\xfe", index=settings.index_dir, text=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["citations"]
