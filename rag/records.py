"""Typed records passed between the pipeline stages.

Seeds loading yields `Paragraph`s; chunking yields `Chunk`s and `Sentence`s;
retrieval yields `Hit`s and a `Retrieval`; answering yields an `Answer` with `Citation`s.
Offsets are character offsets into the seed file's decoded text, so
``text[start:end]`` gives the record's text back.

>>> c = Citation(n=1, source="a.txt", section="", paragraph=1, start=0, end=2,
...              text="你好", quote="你好", score=0.9)
>>> c.to_dict()["quote"]
'你好'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Paragraph:
    source: str
    section: str
    paragraph: int  # 1-based within its section
    start: int
    end: int
    text: str
    page: int | None = None  # 1-based, for a PDF


@dataclass(frozen=True)
class Document:
    source: str  # file name relative to the seeds folder
    text: str  # what the file was reduced to (rag.formats); offsets point into it
    sha256: str
    paragraphs: tuple[Paragraph, ...]
    title: str = ""  # the document's own title, where its format has one


@dataclass(frozen=True)
class Sentence:
    chunk_id: str
    source: str
    section: str
    paragraph: int
    start: int
    end: int
    text: str
    page: int | None = None
    lang: str = ""  # the document's language ("zh", "en")
    rendering: str = ""  # the sentence in the other language (rag.renderings), "" without one


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    section: str
    paragraph: int  # paragraph of the chunk's first sentence
    start: int
    end: int
    text: str
    page: int | None = None  # of the chunk's first sentence (PDF)

    def embed_text(self) -> str:
        """The text that is embedded: the heading gives short chunks context."""
        return f"{self.section}\n{self.text}" if self.section else self.text


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # fused score (reciprocal rank fusion)
    dense: float  # cosine similarity of the chunk to the query
    rank: int  # 1-based


@dataclass(frozen=True)
class ScoredSentence:
    sentence: Sentence
    chunk: Chunk
    score: float
    row: int = -1  # position in the index's sentence list, -1 when not from an index


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    section: str
    paragraph: int
    start: int
    end: int
    text: str  # the whole chunk
    quote: str  # the supporting sentence
    score: float
    page: int | None = None  # 1-based page of the quote, for a PDF
    quote_translation: str = ""  # the quote's rendering in the asker's language, when the answer uses it
    title: str = ""  # the document's own title, where its format has one ("" : name it by `source`)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    closest: tuple[Citation, ...] = ()
    timings_ms: dict = field(default_factory=dict)
    answerer: str = "extractive"
    notice: str = ""
    lang: str = "en"
    decision: object = None  # rag.decision.Decision: answer or abstain, why, and the score

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "closest": [c.to_dict() for c in self.closest],
            "timings_ms": dict(self.timings_ms),
            "answerer": self.answerer,
            "lang": self.lang,
            "notice": self.notice,
            "decision": self.decision.to_dict() if self.decision is not None else None,
        }


@dataclass
class Retrieval:
    """What one query found; timings in milliseconds by stage."""

    hits: list[Hit]
    sentences: list[ScoredSentence]
    # Top sentence cosine to the question as asked (no bonuses); for a foreign
    # sentence (rag.bilingual) as the decision reads it.
    best_sentence: float
    # One of the best sentences holds every word of the question (or a
    # translation of it): the article speaks of exactly this, however low the
    # cosine of a terse question ("Who are Harsh Mehta and Behnam Neyshabur?"),
    # or one of them holds every phrase the question quotes (`quoted_found`).
    words_all_found: bool = False
    # Cosine of the nearest everyday question (rag.offtopic); -1 with none.
    background: float = -1.0
    # For a follow-up searched with the turn before it: how much closer the
    # follow-up on its own is to an everyday question than to the best
    # sentences found for it in context (None for a question searched alone).
    # "Also, how tall is Mount Everest?" borrows the letter's topic from the
    # turn before; on its own it is nowhere near what that found.
    own_offtopic: float | None = None
    kind: str | None = None  # the kind of fact the question asks for (rag.answertype)
    # Every document can be read in the question's language (rag.renderings),
    # so the question was embedded as asked (rag.lexicon.expand).
    same_language: bool = False
    # Cosine of the closest worked example (rag.examples), -1 without any.
    example_near: float = -1.0
    # Everyday questions' best-sentence cosine here: language -> (mean, spread);
    # see rag.decision.corpus_baseline.
    baseline: dict = field(default_factory=dict)
    timings_ms: dict = field(default_factory=dict)
    # The query's vector as it was searched (rag.decision.QuestionPrior reads it).
    query_vector: np.ndarray | None = field(default=None, compare=False, repr=False)
