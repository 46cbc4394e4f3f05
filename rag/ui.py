"""The Gradio chat: ask in the browser, watch the answer stream in, check every source.

Owns the web page and nothing below it: the layout, streaming the answer, the
sources panel, the `chat` API endpoint and the launch options. Answers come
from one shared `Pipeline` (thread-safe, hot-reloads a rebuilt index), so
requests run in parallel. Text from a question or from the letter is escaped
before it is shown: it can never run as HTML or script.

    from rag.config import Settings
    from rag.pipeline import Pipeline
    from rag.ui import build_app, launch_options

    settings = Settings.from_env()
    demo = build_app(Pipeline.load(settings), settings)
    demo.launch(**launch_options(settings))        # http://127.0.0.1:7860

    # from another program, while it runs:
    from gradio_client import Client
    reply = Client("http://127.0.0.1:7860/").predict("why did he leave?", [], api_name="/chat")
    reply["answer"], reply["citations"][0]["quote"]

>>> print(chat_text("<b>x</b> *hi* [1]"))
&lt;b&gt;x&lt;/b&gt; \\*hi\\* \\[1\\]
>>> parse_auth("ann:pa:ss")
('ann', 'pa:ss')
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Iterator

import gradio as gr

from .citations import highlight_html
from .config import Settings
from .decision import detect_lang
from .errors import InputError, RagError
from .page import load_about
from .pipeline import Pipeline
from .records import Answer, Citation
from .ui_documents import chosen_source, documents_panel

log = logging.getLogger(__name__)

CONCURRENCY = 16  # parallel answers; the pipeline is shared and thread-safe
STREAM_STEPS = 16  # pieces an answer is streamed in
STREAM_DELAY_S = 0.01  # between pieces: visibly streams, all in about 0.2 s
LIVE_EVERY_S = 0.05  # a generated answer's tokens: at most 20 updates a second
SHOWN_QUESTION_CHARS = 400  # a huge question is echoed shortened
KEPT_TURNS = 20  # conversation handed to the pipeline (it reads the last question)
EMPTY_PANEL = (
    '<div class="rag-sources rag-empty">Sources for the latest answer appear here.<br>最新回答的出处显示在这里。</div>'
)
CSS = """
.rag-sources { font-size: 0.95em; line-height: 1.6; }
.rag-empty { color: var(--body-text-color-subdued); padding: 0.5em 0; }
.rag-cite { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.6em 0.8em; margin: 0.5em 0; }
.rag-cite-head { font-size: 0.88em; color: var(--body-text-color-subdued); margin-bottom: 0.3em; }
.rag-cite-head b { color: var(--body-text-color); }
.rag-cite mark { background: #ffe58a; color: #111; padding: 0 2px; border-radius: 3px; }
.rag-closest { border-style: dashed; opacity: 0.85; }
.rag-closest mark { background: #e3e6ea; }  /* nearest, not supporting: no "yes" yellow */
.rag-note { font-weight: 600; margin: 0.3em 0 0.6em; }
.rag-indexing { padding: 0.4em 0; }
.rag-indexing.rag-error { color: #b42318; }
.rag-indexing.rag-done { color: #067647; }
.rag-rendering { margin-top: 0.4em; padding-left: 0.6em; border-left: 3px solid #ffe58a; font-style: italic; }
#chat .bubble-wrap { padding-top: 2.4em; }  /* the first bubble clears the label and icons */
"""
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$=:])")
_PIECE = re.compile(r"\[\d+\]|.", re.S)  # a marker is never split while streaming


def chat_text(text: str) -> str:
    """Text for a chat bubble (Markdown): escaped so it shows literally, never as HTML."""
    return html.escape(_MD_PUNCT.sub(r"\\\1", text), quote=False)


def parse_auth(auth: str) -> tuple[str, str] | None:
    """`RAG_AUTH` ("user:password") as Gradio's auth pair; empty means no login."""
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not (sep and user and password):
        raise InputError("RAG_AUTH must look like user:password.")
    return user, password


def launch_options(settings: Settings) -> dict:
    """Keyword arguments for `demo.launch`: loopback by default, never a share link."""
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        "share": False,
        "auth": parse_auth(settings.auth),
        "css": CSS,
        "ssr_mode": False,  # server-side rendering needs Node; the plain page is enough
        "mcp_server": False,
        "max_file_size": f"{settings.upload_max_mb:g}mb",  # gradio refuses a bigger upload before saving it
    }


def status_html(info: dict) -> str:
    """One line saying what the index holds."""
    built = str(info.get("built_at", "")).replace("T", " ").replace("+00:00", " UTC")
    parts = (
        f"{info.get('documents', 0)} document(s) 篇文档",
        f"{info.get('chunks', 0)} chunks 个片段",
        f"model 模型 {info.get('model', '?')}",
        f"built 构建于 {built}",
    )
    return '<div class="rag-status">Index 索引: ' + " · ".join(html.escape(p) for p in parts) + "</div>"


def _citation_html(c: Citation, closest: bool) -> str:
    section = html.escape(c.section or "导语 / lead")
    page = f" · p. {c.page}" if c.page else ""
    name = html.escape(f"{c.title} ({c.source})" if c.title else c.source)
    head = f"<b>[{c.n}]</b> {section} · ¶{c.paragraph}{page} · {name} · score 相似度 {c.score:.3f}"
    kind = "rag-cite rag-closest" if closest else "rag-cite"
    rendering = (
        f'<div class="rag-rendering" lang="{detect_lang(c.quote_translation)}">{html.escape(c.quote_translation)}</div>'
        if c.quote_translation
        else ""
    )
    body = f'<div class="rag-cite-head">{head}</div><div class="rag-passage">{highlight_html(c)}</div>{rendering}'
    return f'<div class="{kind}" data-n="{c.n}">{body}</div>'


def sources_html(answer: Answer) -> str:
    """The sources panel: each citation with its supporting sentence highlighted;
    for an abstention, the closest passages, marked as not supporting an answer."""
    if answer.abstained:
        note = (
            "The letter does not answer this. Closest passages — they do not support an answer:<br>"
            "信中没有回答这个问题。以下是最接近的段落，不能作为答案的依据："
        )
        cards = [_citation_html(c, closest=True) for c in answer.closest]
        return f'<div class="rag-sources"><div class="rag-note">{note}</div>{"".join(cards)}</div>'
    cards = [_citation_html(c, closest=False) for c in answer.citations]
    title = f'<div class="rag-note">Sources 出处 ({len(cards)})</div>'
    return f'<div class="rag-sources">{title}{"".join(cards)}</div>'


def stream_pieces(text: str, steps: int = STREAM_STEPS) -> list[str]:
    """Growing prefixes of `text`, at most `steps` of them, the last one whole.

    >>> stream_pieces("ab[12]cd", 3)
    ['ab', 'ab[12]c', 'ab[12]cd']
    """
    atoms = _PIECE.findall(text)
    size = max(1, -(-len(atoms) // steps))
    return ["".join(atoms[: i + size]) for i in range(0, len(atoms), size)] or [""]


def _shorten(text: str, limit: int = SHOWN_QUESTION_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


def _error_text(e: Exception) -> str:
    if isinstance(e, RagError):
        hint = f" {e.hint}" if e.hint else ""
        return f"⚠️ {e}{hint}"
    return f"⚠️ Something went wrong while answering ({type(e).__name__}); please try again. 回答时出错，请重试。"


def _history(turns: object) -> list[dict]:
    """Only well-formed turns reach the pipeline (the API accepts anything)."""
    if not isinstance(turns, list):
        return []
    ok = [t for t in turns if isinstance(t, dict) and t.get("role") in ("user", "assistant")]
    return [{"role": t["role"], "content": t["content"]} for t in ok if isinstance(t.get("content"), str)]


def _notice_md(answer: Answer) -> str:
    return f"_{chat_text(answer.notice)}_\n\n" if answer.notice else ""


def build_app(pipeline: Pipeline, settings: Settings) -> gr.Blocks:
    """The chat page and the `chat` API endpoint; launch it with `launch_options`."""

    def respond(question: str, chat: list, turns: list, source: str | None = None) -> Iterator[tuple]:
        chat = [*chat, {"role": "user", "content": chat_text(_shorten(question or ""))}]
        yield "", [*chat, {"role": "assistant", "content": "…"}], gr.skip(), gr.skip(), gr.skip()
        shown, answer, last = "", None, 0.0
        try:
            # a model's tokens, then the Answer
            for item in pipeline.ask_stream(question, _history(turns), source=chosen_source(source)):
                if isinstance(item, Answer):
                    answer = item
                    continue
                shown += item
                if time.monotonic() - last >= LIVE_EVERY_S:
                    last = time.monotonic()
                    yield gr.skip(), [*chat, {"role": "assistant", "content": chat_text(shown)}], *(gr.skip(),) * 3
        except Exception as e:  # any failure becomes a message; the app keeps serving
            if not isinstance(e, RagError):
                log.exception("answering %r failed", _shorten(question or "", 80))
            yield gr.skip(), [*chat, {"role": "assistant", "content": _error_text(e)}], EMPTY_PANEL, turns, gr.skip()
            return
        lead = _notice_md(answer)
        # streamed tokens are replaced by the final text (markers fixed, or the fallback) at once
        for piece in [answer.answer] if shown else stream_pieces(answer.answer):
            yield gr.skip(), [*chat, {"role": "assistant", "content": lead + chat_text(piece)}], *(gr.skip(),) * 3
            time.sleep(STREAM_DELAY_S)
        said = [{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.answer}]
        line = status_html(pipeline.describe())  # ask_stream has just refreshed the index
        yield gr.skip(), gr.skip(), sources_html(answer), [*turns, *said][-KEPT_TURNS:], line

    def chat(question: str, history: list[dict] | None = None, source: str = "") -> dict:
        """Answer a question about the documents (Chinese or English). `history`: earlier turns,
        [{"role": "user" | "assistant", "content": "..."}]; `source`: one document's name to
        answer from ("": all). Returns the answer, its citations and how it was decided."""
        try:
            return pipeline.ask(question, _history(history), source or None).to_dict()
        except RagError as e:  # bad input: no traceback in the log; the hint as in the chat
            raise gr.Error(str(e) + (f" {e.hint}" if e.hint else ""), print_exception=False) from None
        except Exception as e:
            log.exception("API answer failed")
            raise gr.Error(_error_text(e), print_exception=False) from None  # logged just above

    def status() -> str:
        pipeline.refresh()  # a rebuilt index shows up in the line on the next page load
        return status_html(pipeline.describe())

    info = pipeline.describe()
    about = load_about(settings.seeds_dir, info["sources"], info["titles"])
    with gr.Blocks(title=about.title, analytics_enabled=False) as demo:
        gr.Markdown(f"## {chat_text(about.title)}\n{chat_text(about.subtitle)}", elem_id="about")
        status_line = gr.HTML(status_html(pipeline.describe()), elem_id="status")
        turns = gr.State([])  # the conversation as plain text, for follow-up questions
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Chat 对话",
                    elem_id="chat",
                    height=460,
                    latex_delimiters=[],
                    buttons=["copy", "copy_all"],
                    feedback_options=None,
                )
                question = gr.Textbox(
                    label="Your question 你的问题",
                    placeholder="e.g. why did he leave? / 例如：他为什么离开？",
                    elem_id="question",
                    max_lines=6,
                )
                with gr.Row():
                    send = gr.Button("Ask 提问", variant="primary", elem_id="send")
                    clear = gr.Button("Clear conversation 清空对话", elem_id="clear")
                if about.examples:
                    gr.Examples([[q] for q in about.examples], inputs=[question], label="Examples 示例问题")
            with gr.Column(scale=2):
                documents = documents_panel(pipeline, settings)
                sources = gr.HTML(EMPTY_PANEL, label="Sources 出处", elem_id="sources")

        outputs = [question, chatbot, sources, turns, status_line]
        gr.on(
            [question.submit, send.click],
            respond,
            inputs=[question, chatbot, turns, documents.source],
            outputs=outputs,
            concurrency_limit=CONCURRENCY,
            api_visibility="private",
        )
        clear.click(lambda: ("", [], EMPTY_PANEL, []), outputs=outputs[:4], api_visibility="private")
        # the chat's own bin icon empties the bubbles; forget the conversation and its sources too
        chatbot.clear(lambda: (EMPTY_PANEL, []), outputs=[sources, turns], api_visibility="private")
        demo.load(status, outputs=status_line, api_visibility="private")
        gr.api(chat, api_name="chat", concurrency_limit=CONCURRENCY)
    return demo
