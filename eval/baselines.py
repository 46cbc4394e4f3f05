"""The plain LangChain baseline: default splitter, FAISS top-4, top chunk as answer.

This is what a tutorial pipeline does with no tuning:
`RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)` over each
seed document, the project's embedding model behind a LangChain `Embeddings`
adapter, `FAISS.similarity_search_with_score(q, k=4)`, and the top chunk as
the answer. It never abstains and ignores the conversation history. Its
replies use the `ask --json` shape, so the runner scores it like the others.
LangChain is imported only here, and only when a baseline is built.

>>> locate("甲乙丙乙丙丁", "乙丙丁", after=0)
(3, 6)
>>> where_in([(0, 5, "", 1), (6, 9, "小标题", 1)], 7)
('小标题', 1)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

from rag.config import Settings
from rag.embedding import Embedder
from rag.seeds import load_seeds

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4


def locate(text: str, piece: str, after: int) -> tuple[int, int]:
    """Offsets of `piece` in `text`, searching from `after` first (chunks overlap,
    so the next chunk starts after the previous chunk's start); (-1, -1) if absent."""
    start = text.find(piece, after)
    if start < 0:
        start = text.find(piece)
    return (start, start + len(piece)) if start >= 0 else (-1, -1)


def where_in(paragraphs: Sequence[tuple[int, int, str, int]], offset: int) -> tuple[str, int]:
    """(section, paragraph) of the paragraph holding `offset`, or the next one after it."""
    for _start, end, section, number in paragraphs:
        if offset < end:
            return section, number
    return "", 0


def _adapter(embedder: Embedder):
    """A LangChain `Embeddings` over our embedder (e5 prefixes are added inside it)."""
    from langchain_core.embeddings import Embeddings

    class EmbedderAdapter(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed_passages(list(texts)).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_queries([text])[0].tolist()

    return EmbedderAdapter()


class LangChainBaseline:
    """Build once (splits and embeds the seeds), then `ask` like a pipeline."""

    answerer = "langchain-default"

    def __init__(self, settings: Settings, embedder: Embedder, k: int = TOP_K) -> None:
        with warnings.catch_warnings():  # langchain-community announces its own sunset on import
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.vectorstores import FAISS
            from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
        texts, metas = [], []
        for doc in load_seeds(settings.seeds_dir):
            paragraphs = [(p.start, p.end, p.section, p.paragraph) for p in doc.paragraphs]
            after = 0
            for piece in splitter.split_text(doc.text):
                start, end = locate(doc.text, piece, after)
                after = max(start + 1, after)
                section, number = where_in(paragraphs, start) if start >= 0 else ("", 0)
                texts.append(piece)
                metas.append(
                    {"source": doc.source, "section": section, "paragraph": number, "start": start, "end": end}
                )
        self.k = k
        self.chunks = len(texts)
        self.store = FAISS.from_texts(texts, _adapter(embedder), metadatas=metas)

    def ask(self, question: str, history: Sequence[dict] = ()) -> dict:
        """The top chunk as the answer, the top-k chunks as citations; `history` is ignored."""
        t0 = time.perf_counter()
        found = self.store.similarity_search_with_score(question, k=self.k)
        citations = [
            {
                "n": n,
                **{key: doc.metadata[key] for key in ("source", "section", "paragraph", "start", "end")},
                "text": doc.page_content,
                "quote": doc.page_content,
                # FAISS's default index returns squared L2 distances; on unit
                # vectors cosine = 1 - d/2, which is comparable with our scores.
                "score": round(1.0 - float(distance) / 2.0, 4),
            }
            for n, (doc, distance) in enumerate(found, start=1)
        ]
        return {
            "question": question,
            "answer": citations[0]["text"] if citations else "",
            "abstained": False,
            "citations": citations,
            "closest": [],
            "timings_ms": {"total": round((time.perf_counter() - t0) * 1000, 3)},
            "answerer": self.answerer,
            "notice": "",
        }
