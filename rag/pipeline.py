"""The question-answering pipeline: load once, then `ask` many times.

`Pipeline.load` loads the embedder and a verified, fresh index (building it
when missing or stale). `ask` checks the question, retrieves with the
conversation in mind, and composes the answer. When `python -m rag build`
replaces the index while a server runs, the next `ask` picks it up. One
pipeline is safe to share between threads.

>>> clean_question("  why\\x00 did he leave?\\ud800 ", 100)
'why did he leave?'
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from .answer import Policy, compose
from .config import Settings
from .conversation import Turn, contextual_query
from .decision import examples_model, load_model
from .embedding import Embedder, load_embedder
from .errors import InputError, RagError
from .examples import examples_sha256
from .generate import LLMAnswerer
from .indexing import index_stamp, open_index
from .records import Answer, Retrieval
from .retrieval import Retriever
from .store import IndexData

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SPACE = re.compile(r"\s+")
# Markup is not words: a tag pasted into a question would pull its vector
# away from the text (the UI shows the question as typed, escaped).
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")


def clean_question(question: object, max_chars: int) -> str:
    """The question as plain text, or InputError saying why it cannot be asked.

    >>> clean_question("  <img src=x onerror=alert(1)> why\u200b did he <b>leave</b>? ", 2000)
    'why did he leave ?'
    """
    if not isinstance(question, str):
        raise InputError("The question must be text.")
    if len(question) > max_chars * 4:
        raise InputError(f"The question is {len(question):,} characters long; the limit is {max_chars:,}.")
    text = _SURROGATE.sub("", question)
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", text))
    text = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    if not text:
        raise InputError("The question is empty." + (" (HTML tags are not read.)" if question.strip() else ""))
    if len(text) > max_chars:
        raise InputError(f"The question is {len(text):,} characters long; the limit is {max_chars:,}.")
    return text


def with_titles(answer: Answer, titles: dict[str, str]) -> Answer:
    """The answer with each citation's document title (rag.formats), where there is one."""
    if not titles:
        return answer
    named = {
        field: tuple(replace(c, title=titles.get(c.source, "")) for c in getattr(answer, field))
        for field in ("citations", "closest")
    }
    return replace(answer, **named)


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        index: IndexData,
        leave_out_asked: bool = False,
        say: Callable[[str], None] = lambda _m: None,
    ) -> None:
        """`leave_out_asked`: an example identical to the question asked is not
        looked up (rag.examples); evaluations set it, so the examples file
        measures how well the examples carry over, not their recall. `say`
        hears a note when the decision fitted on the examples is out of date."""
        # Process-wide, once: one query over a small flat index is fastest on one
        # thread, and FAISS's default OpenMP team spins after each search and
        # starves the next query embedding of both cores (bench/README.md).
        import faiss  # here, like rag.store: importing the package stays cheap

        faiss.omp_set_num_threads(1)
        self.settings = settings
        self.embedder = embedder
        self.policy = Policy(
            top_k=settings.top_k,
            model=load_model(),
            own_model=examples_model(settings.examples, examples_sha256(settings.examples), say),
        )
        self._lock = threading.Lock()
        # the optional generating model (issue 5); None: every answer is extractive
        self.llm = LLMAnswerer(settings, embedder.embed_queries) if settings.llm_base_url else None
        self.leave_out_asked = leave_out_asked
        self._use(index)

    @classmethod
    def load(cls, settings: Settings, say: Callable[[str], None] = print, leave_out_asked: bool = False) -> Pipeline:
        embedder = load_embedder(settings)
        return cls(settings, embedder, open_index(settings, embedder, say), leave_out_asked, say)

    def _use(self, index: IndexData) -> None:
        self.index = index
        # The sentences the worked examples are answered by: the examples' own decision
        # judges answers led by one of them; a sentence no example knows (another
        # document, or one added since) is judged by the general decision.
        about = frozenset(r for rows in index.examples.rows for r in rows)
        self.policy = replace(self.policy, own_rows=about)
        s = self.settings
        self.retriever = Retriever(
            index, self.embedder, s.retrieve_k, s.retrieval, self.leave_out_asked, bool(s.match_renderings)
        )
        self._stamp = self._manifest_stamp()

    def _manifest_stamp(self) -> object:
        return index_stamp(self.settings)

    def refresh(self) -> bool:
        """Reload when the index on disk was replaced; keep the old one on failure."""
        stamp = self._manifest_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        with self._lock:
            if stamp == self._stamp:
                return False
            try:
                self._use(open_index(self.settings, self.embedder, say=lambda _msg: None))
            except RagError:
                return False  # mid-swap or broken: answer from the index we have
        return True

    def ask(self, question: object, history: Sequence[Turn] = (), source: str | None = None) -> Answer:
        """The finished answer; a configured model is asked for one complete reply.
        `source` restricts it to one document (default: `Settings.source`)."""
        *_, answer = self.ask_stream(question, history, stream=False, source=source)
        return answer

    def ask_stream(
        self, question: object, history: Sequence[Turn] = (), stream: bool = True, source: str | None = None
    ) -> Iterator[str | Answer]:
        """Pieces of the model's reply as they arrive (none for an extractive
        answer, or when not `stream`), then the final `Answer`."""
        t0 = time.perf_counter()
        text = clean_question(question, self.settings.max_question_chars)
        self.refresh()
        retriever = self.retriever  # one index for the whole answer, even if a rebuild lands meanwhile
        source = self.settings.source if source is None else source
        found, answer, compose_ms = self._extractive(retriever, text, history, source)
        # An abstention is final: the model is not asked to answer what the text does not say.
        if self.llm is not None and not answer.abstained:  # the extractive answer is its fallback
            answer = yield from self.llm.answer(found, answer, history, retriever.index.sentence_views[0], stream)
        answer = with_titles(answer, retriever.index.manifest.get("titles", {}))
        timings = {**found.timings_ms, "compose": compose_ms, **answer.timings_ms}
        timings["total"] = round((time.perf_counter() - t0) * 1000, 3)
        yield Answer(**{**answer.__dict__, "timings_ms": timings})

    def _extractive(
        self, retriever: Retriever, text: str, history: Sequence[Turn], source: str = ""
    ) -> tuple[Retrieval, Answer, float]:
        """Retrieval for the question in its conversation, the extractive answer,
        and the milliseconds composing it took."""
        found = retriever.search(contextual_query(text, history), text, source)
        t0 = time.perf_counter()
        answer = compose(text, found, retriever.index.sentence_views[0], self.policy)
        return found, answer, round((time.perf_counter() - t0) * 1000, 3)

    def warm_up(self, question: str = "why did he leave?") -> None:
        """One extractive answer, so the first person asking does not wait for
        the word lists to load; a configured language model is not called."""
        self._extractive(self.retriever, question, ())

    def sources(self) -> list[str]:
        """The documents the index holds (the seeds' files include renderings, which are none)."""
        return sorted({c.source for c in self.index.chunks})

    def describe(self) -> dict:
        """What the index holds, for a status line."""
        m = self.index.manifest
        return {
            "documents": len(self.sources()),
            "sources": self.sources(),
            "titles": dict(m.get("titles", {})),
            "chunks": m.get("counts", {}).get("chunks", 0),
            "model": f"{m.get('model', {}).get('family')} via {self.settings.embedder}",
            "built_at": m.get("built_at", ""),
        }
