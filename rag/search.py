"""Candidate search: the chunks nearest a query vector and those sharing its words.

The retriever asks a `ChunkSearch` for ranked chunk positions and does not
care which store answers: `FaissSearch` reads the index folder's FAISS index
and `bm25s` postings (rag.store), `rag.milvus.MilvusSearch` a Milvus
collection. Both rank the same way, so the same index gives the same answer:
cosine (inner product of unit vectors) or BM25 score, best first, ties by
position. A `Where` narrows a search to one document, or to the chunks in (or
not in) one language (rag.bilingual), without the caller listing positions.

>>> import faiss, numpy as np
>>> from rag.records import Chunk, Sentence
>>> chunks = [Chunk(f"c{i}", "a.txt" if i < 2 else "b.txt", "", i, 0, 1, "x") for i in range(3)]
>>> sentences = [Sentence(c.id, c.source, "", 0, 0, 1, "x", lang="zh" if i else "en") for i, c in enumerate(chunks)]
>>> dense = faiss.IndexFlatIP(2)
>>> dense.add(np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32))
>>> s = FaissSearch(dense, None, chunks, sentences, np.arange(3))
>>> [(i, round(c, 2)) for i, c in s.dense(np.array([1, 0], np.float32), 2)]
[(0, 1.0), (1, 0.6)]
>>> [i for i, _ in s.dense(np.array([1, 0], np.float32), 2, Where(source="b.txt"))]
[2]
>>> [i for i, _ in s.dense(np.array([1, 0], np.float32), 3, Where(lang="en", foreign=True))]
[1, 2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Where:
    """Which chunks a search may return: all by default; `source` keeps one
    document's; `lang` keeps those holding a sentence in that language, or
    with `foreign` those holding none (rag.bilingual.written_in)."""

    source: str = ""
    lang: str = ""
    foreign: bool = False


class ChunkSearch(Protocol):
    size: int  # chunks searched
    vocab: dict[str, int]  # BM25 term → its column
    df: np.ndarray  # documents (chunks) holding each term
    n_docs: int
    has_rendered: bool  # chunks also embedded as read in the other language

    def dense(
        self, vec: np.ndarray, k: int, where: Where | None = None, rendered: bool = False
    ) -> list[tuple[int, float]]: ...

    def lexical(self, terms: list[str], k: int, where: Where | None = None) -> list[int]: ...

    def cosines(self, vec: np.ndarray, positions: list[int]) -> list[float]: ...


def chunk_langs(sentences: list, sentence_chunk: np.ndarray, n_chunks: int) -> list[frozenset[str]]:
    """The languages of each chunk's sentences (`Sentence.lang`, else the text's own)."""
    from .decision import detect_lang

    out: list[set[str]] = [set() for _ in range(n_chunks)]
    for s, chunk in zip(sentences, sentence_chunk.tolist(), strict=True):
        out[chunk].add(s.lang or detect_lang(s.text))
    return [frozenset(langs) for langs in out]


def ranked(best: dict[int, float], k: int) -> list[tuple[int, float]]:
    """The `k` best (position, score) pairs, best first, ties by position."""
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


class FaissSearch:
    """`ChunkSearch` over the index folder: `dense` (and `rendered`) FAISS indexes and a `bm25s.BM25`."""

    def __init__(self, dense, bm25, chunks: list, sentences: list, sentence_chunk: np.ndarray, rendered=None) -> None:
        self._index, self._rendered, self._bm25 = dense, rendered, bm25
        self.size = int(dense.ntotal)
        self.has_rendered = rendered is not None
        self.vocab = dict(bm25.vocab_dict) if bm25 is not None else {}
        self.df = np.diff(bm25.scores["indptr"]) if bm25 is not None else np.zeros(0, np.int64)
        self.n_docs = max(int(bm25.scores["num_docs"]), 1) if bm25 is not None else 1
        self._sources = [c.source for c in chunks]
        self._langs = chunk_langs(sentences, sentence_chunk, len(chunks))
        self._groups: dict[Where, np.ndarray] = {}

    def positions(self, where: Where | None) -> np.ndarray | None:
        """The chunk positions `where` allows (None: all), kept per `Where`:
        they depend only on the index."""
        if where is None or where == Where():
            return None
        if where not in self._groups:
            keep = [
                (not where.source or source == where.source)
                and (not where.lang or (where.lang in langs) != where.foreign)
                for source, langs in zip(self._sources, self._langs, strict=True)
            ]
            self._groups[where] = np.flatnonzero(keep).astype(np.int64)
        return self._groups[where]

    def dense(
        self, vec: np.ndarray, k: int, where: Where | None = None, rendered: bool = False
    ) -> list[tuple[int, float]]:
        import faiss

        store = self._rendered if rendered else self._index
        allowed = self.positions(where)
        if store is None or k <= 0 or (allowed is not None and allowed.size == 0):
            return []
        # FAISS skips the other chunks inside the search (flat or HNSW alike).
        params = None if allowed is None else faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        k = min(k, self.size if allowed is None else int(allowed.size))
        scores, ids = store.search(vec.reshape(1, -1).astype(np.float32), k, params=params)
        best: dict[int, float] = {}
        for i, score in zip(ids[0].tolist(), scores[0].tolist(), strict=True):
            if i >= 0:
                best[i] = score
        return ranked(best, k)

    def lexical(self, terms: list[str], k: int, where: Where | None = None) -> list[int]:
        if not terms or self._bm25 is None or k <= 0:
            return []
        scores = self._bm25.get_scores(terms)
        allowed = self.positions(where)
        if allowed is not None:
            kept = np.zeros_like(scores)
            kept[allowed] = scores[allowed]
            scores = kept
        k = min(k, len(scores))
        # every chunk scoring at least the k-th best, so a tie at the cut goes by position
        cut = np.partition(scores, len(scores) - k)[len(scores) - k]
        top = np.flatnonzero(scores >= max(cut, np.finfo(scores.dtype).tiny))
        top = top[np.lexsort((top, -scores[top]))][:k]
        return [int(i) for i in top]

    def cosines(self, vec: np.ndarray, positions: list[int]) -> list[float]:
        return [float(self._index.reconstruct(int(p)) @ vec) for p in positions]
