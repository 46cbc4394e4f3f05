"""Retrieval: hybrid chunk search, then sentence scoring inside the top chunks.

Dense (FAISS inner product on unit vectors) and BM25 (`bm25s`) rankings are
fused by reciprocal rank fusion, `score = Σ 1 / (RRF_K + rank)`. The
sentences of the best chunks are then scored against the query vector, using
sentence vectors computed at build time, so an answer can quote exactly the
sentences that support it.

>>> rrf([[2, 0], [0, 1]], k=60)[:2]
[(0, 0.0325...), (2, 0.0163...)]
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from functools import cached_property

import numpy as np

from . import bilingual
from .answertype import expected_type, has_type
from .chunking import IN_CONTEXT_VIEW, RENDERING_VIEW
from .decision import detect_lang
from .embedding import Embedder
from .errors import InputError
from .lexical import terms, tokenize
from .lexicon import expand, translations
from .offtopic import closest_background
from .records import Hit, Retrieval, ScoredSentence
from .renderings import bridged
from .search import Where, ranked
from .store import IndexData

RRF_K = 60
# Share of the query's IDF-weighted words a sentence contains, times this, is
# added: when two sentences are equally close in meaning, the one that uses
# the question's own (or translated) words is usually the answer.
LEX_WEIGHT = 0.03
# A sentence holding the kind of fact the question asks for (a date for
# "when", a cause for "why": see rag.answertype) gains this much.
TYPE_BONUS = 0.02
# A sentence shorter than this that follows another in its chunk says little
# on its own ("对他而言,这意味着离开。" matches every question about leaving), so
# only its in-context view counts (chunking.sentence_views: the end of the
# sentence before, then it). On eval/questions.jsonl: hit@1 0.771 -> 0.791,
# answer accuracy unchanged; at 18 characters and above accuracy drops.
SHORT_SENTENCE = 15
ALL_FOUND_IN = 4  # best sentences searched for every word of the question
OWN_TOP = 4  # best sentences a follow-up on its own is compared with
# Tried on eval/questions.jsonl and left out, as they did not help: adding the
# chunk's cosine or fused rank, a hubness penalty (similarity to the corpus
# centroid), a short-sentence penalty, and the mean instead of the max over
# sentence views; a query-prefixed sentence view; sentences ranked (or only
# citations numbered) by rank fusion of score and shared words, which helped
# the dev set but not the held-out sets; leaving the Latin words of a Chinese
# question untranslated (dictionary noise, anthropic -> 有关, is what puts the
# reason passage first for "他为什么离开 Anthropic?").


def pool_size(retrieve_k: int) -> int:
    """How many chunks dense search and BM25 each rank before fusion keeps
    `retrieve_k`: enough that one ranking alone can still place a chunk.

    >>> pool_size(16), pool_size(2)
    (64, 32)
    """
    return max(4 * retrieve_k, 32)


def rrf(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked id lists; best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class Retriever:
    def __init__(
        self,
        index: IndexData,
        embedder: Embedder,
        retrieve_k: int,
        mode: str = "hybrid",
        leave_out_asked: bool = False,
        match_renderings: bool = False,
    ) -> None:
        """`match_renderings`: a question the renderings bridge (rag.renderings.bridged)
        is embedded as asked and also meets the sentences' renderings; off, every
        question is matched as before renderings existed (see Settings.match_renderings).
        The corpus baseline the decision reads (rag.decision.corpus_baseline)
        comes from the manifest, or is measured here once."""
        self.index = index
        # An evaluation over the examples file sets this: the example that is
        # the question being asked is not looked up (rag.examples).
        self.leave_out_asked = leave_out_asked
        self.mode = mode  # "hybrid", or "dense" / "bm25" alone
        self.embedder = embedder
        self.retrieve_k = retrieve_k
        self._positions = {c.id: i for i, c in enumerate(index.chunks)}
        self._sentence_tokens: dict[int, frozenset[str]] = {}
        chunk_of = index.sentence_chunk
        self.baseline = _baseline(index)
        self._readable = bridged(index.sentences) if match_renderings else frozenset()
        self._match = match_renderings
        self._two: dict[str, bilingual.Bilingual | None] = {}
        # How foreign passages are read (rag/bilingual.json), for an index with any; eval.fit_bilingual varies it.
        mixed = match_renderings and bool(index.manifest.get("language_nulls"))
        self.asked_share: dict[str, float] = bilingual.load_shares() if mixed else {}
        self._context_only = np.array(
            [
                len(s.text.strip()) < SHORT_SENTENCE and i > 0 and chunk_of[i] == chunk_of[i - 1]
                for i, s in enumerate(index.sentences)
            ],
            dtype=bool,
        )

    def search(self, query: str, question: str | None = None, source: str = "") -> Retrieval:
        """Retrieve for `query` (the question, with the earlier turn it refers to);
        `question` alone decides which kind of fact is sought; `source`, when
        given, is the one document to search (InputError if the index lacks it)."""
        where = self._where(source)
        t: dict[str, float] = {}
        clock = time.perf_counter()
        lang = detect_lang(question or query)
        own = lang in self._readable
        followup = question not in (None, query)  # also embedded on its own (`_own_offtopic`)
        tokens, translated, text = expand(query, self.index.lexicon, self.index.cutter, as_asked=own)
        # Passages it cannot read in its language beside ones it can: those meet
        # it as asked, these with its translations (rag.bilingual).
        two = None if own else self._bilingual(lang)
        split = two is not None and text != query
        texts = [text, *([query] if split else []), *([question] if followup else [])]
        vecs = self.embedder.embed_queries(texts)  # one call: cheaper than two
        qvec = vecs[0]
        clock = _lap(t, "embed", clock)
        if two is not None:
            two = replace(two, asked=vecs[1] if split else qvec)
            dense_ids, dense_scores = bilingual.search(self.index.search, qvec, two, self._pool, source, lang)
        else:
            dense_ids, dense_scores = self._dense(qvec, where, rendered=own)
        clock = _lap(t, "dense", clock)
        expanded = [w for w in dict.fromkeys(terms(tokens + translated)) if w in self.index.search.vocab]
        bm25_ids = self.index.search.lexical(expanded, pool_size(self.retrieve_k), where)
        clock = _lap(t, "bm25", clock)
        rankings = {"hybrid": [dense_ids, bm25_ids], "dense": [dense_ids], "bm25": [bm25_ids]}[self.mode]
        fused = rrf(rankings)[: self.retrieve_k]
        cos = dict(zip(dense_ids, dense_scores, strict=False))
        missing = [i for i, _ in fused if i not in cos]  # found by BM25 alone: their plain cosine, in one call
        cos.update(zip(missing, self.index.search.cosines(qvec, missing), strict=True))
        hits = [Hit(self.index.chunks[i], s, float(cos[i]), r) for r, (i, s) in enumerate(fused, start=1)]
        clock = _lap(t, "fusion", clock)
        kind = expected_type(question or query)
        gains = {}
        among = self.index.examples.embedded_as(own)  # entries embedded as this query was
        left_out = text if self.leave_out_asked else None
        if self.mode == "hybrid":  # the dense and BM25 baselines stay pure
            gains = self.index.examples.bonus(qvec, kind, left_out, among)
        views = self.index.sentence_views if own else self.index.sentence_views[:RENDERING_VIEW]
        sentences, best = self._sentences(qvec, views, hits, self._weights(expanded), kind, gains, two)
        clock = _lap(t, "sentences", clock)
        own_tokens = tokens if question in (None, query) else tokenize(question, self.index.cutter)
        own_offtopic = None
        if followup and sentences:
            own_offtopic = self._own_offtopic(vecs[-1], views, sentences[:OWN_TOP])
        return Retrieval(
            hits=hits,
            sentences=sentences,
            best_sentence=best,
            words_all_found=self._all_found(own_tokens, sentences[:ALL_FOUND_IN])
            or quoted_found(question or query, sentences[:ALL_FOUND_IN]),
            background=closest_background(self.index.background, qvec),
            own_offtopic=own_offtopic,
            kind=kind,
            same_language=own,
            example_near=self.index.examples.nearest(qvec, left_out, among),
            baseline=self.baseline if two is None else {**self.baseline, lang: two.baseline},
            timings_ms=t,
            query_vector=qvec,
        )

    def _own_offtopic(self, vec: np.ndarray, views: np.ndarray, sentences: list[ScoredSentence]) -> float:
        """Nearest everyday question minus nearest of `sentences`, for the
        follow-up's own vector `vec` (embedded with its query, in one call)."""
        rows = [s.row for s in sentences if s.row >= 0]
        near = float((views[:, rows] @ vec).max()) if rows else -1.0
        return closest_background(self.index.background, vec) - near

    @property
    def _pool(self) -> int:
        return min(self.index.search.size, pool_size(self.retrieve_k))

    def use_shares(self, shares: dict[str, float]) -> None:
        """Read foreign passages with these as-asked shares (rag.bilingual.Bilingual.foreign)."""
        self.asked_share, self._two = dict(shares), {}

    def _bilingual(self, lang: str) -> bilingual.Bilingual | None:
        """How a question in `lang` reads this index's foreign passages, from
        the nulls the build recorded; None with nothing foreign (or with the
        renderings switched off, which the nulls count on)."""
        if lang not in self._two:
            nulls = self.index.manifest.get("language_nulls")
            readable = self._match and isinstance(nulls, dict)
            how = bilingual.calibrate(nulls, lang, self.asked_share) if readable else None
            if how is not None:
                how = replace(how, own_rows=bilingual.written_in(self.index.sentences, lang))
            self._two[lang] = how
        return self._two[lang]

    @cached_property
    def _sources(self) -> frozenset[str]:
        return frozenset(c.source for c in self.index.chunks)

    def _where(self, source: str) -> Where | None:
        if source and source not in self._sources:
            raise InputError(f"No document {source!r} in the index; it holds: {', '.join(sorted(self._sources))}.")
        return Where(source=source) if source else None

    def _dense(
        self, qvec: np.ndarray, where: Where | None = None, rendered: bool = False
    ) -> tuple[list[int], list[float]]:
        """Chunks by cosine, best first; `rendered`: each chunk also as read in
        the other language (`IndexData.dense_rendered`), the closer of the two counting."""
        n, search = self._pool, self.index.search
        best: dict[int, float] = {}
        for view in (False, True) if rendered and search.has_rendered else (False,):
            for i, score in search.dense(qvec, n, where, rendered=view):
                if score > best.get(i, -2.0):
                    best[i] = score
        found = ranked(best, n)
        return [i for i, _ in found], [score for _, score in found]

    def _weights(self, tokens: list[str]) -> dict[str, float]:
        """BM25-style IDF of each distinct query token the corpus has."""
        search = self.index.search
        out = {}
        for t in dict.fromkeys(tokens):
            column = search.vocab.get(t, len(search.df))
            df = int(search.df[column]) if column < len(search.df) else 0
            if df:
                out[t] = float(np.log(1 + (search.n_docs - df + 0.5) / (df + 0.5)))
        return out

    def _lexical(self, row: int, weights: dict[str, float]) -> float:
        if not weights:
            return 0.0
        words = self._tokens(row)
        return sum(w for t, w in weights.items() if t in words) / sum(weights.values())

    def _sentences(
        self,
        qvec: np.ndarray,
        views: np.ndarray,
        hits: list[Hit],
        weights: dict[str, float],
        kind: str | None,
        gains: dict[int, float],
        two: bilingual.Bilingual | None = None,
    ) -> tuple[list[ScoredSentence], float]:
        """The sentences of the hits, best first, and the highest plain cosine
        among them over `views` (the index's sentence views the question reads);
        `gains` are what worked examples add (rag.examples); `two`: as the
        index's two languages are compared (rag.bilingual), the highest cosine
        then as the decision reads it."""
        by_chunk = {self._position(h): h for h in hits}
        rows = np.flatnonzero(np.isin(self.index.sentence_chunk, list(by_chunk)))
        if rows.size == 0:
            return [], 0.0
        context = self._context_only[rows]

        def best_view(cosines: np.ndarray) -> np.ndarray:
            return np.where(context, cosines[IN_CONTEXT_VIEW], cosines.max(axis=0))

        sims = plain = best_view(views[:, rows] @ qvec)
        if two is not None:  # the other language's sentences as rag.bilingual compares them
            mine, asked = two.own_rows[rows], best_view(views[:, rows] @ two.asked)
            sims = np.where(mine, asked, two.foreign(plain, asked))
            plain = np.where(mine, asked, two.decide[0] * plain + two.decide[1])
        # The baselines stay pure: dense-only ranks sentences by meaning alone,
        # BM25-only by shared words (meaning only breaks ties).
        dense_w, lex_w = {"hybrid": (1.0, LEX_WEIGHT), "dense": (1.0, 0.0), "bm25": (0.1, 1.0)}[self.mode]
        out = []
        for row, sim in zip(rows.tolist(), sims.tolist(), strict=False):
            hit = by_chunk[int(self.index.sentence_chunk[row])]
            text = self.index.sentences[row].text
            bonus = TYPE_BONUS if kind and has_type(kind, text) else 0.0
            score = dense_w * sim + bonus + lex_w * self._lexical(row, weights) + gains.get(row, 0.0)
            out.append(ScoredSentence(self.index.sentences[row], hit.chunk, score, row))
        return sorted(out, key=lambda s: -s.score), float(plain.max())

    def _all_found(self, tokens: list[str], sentences: list[ScoredSentence]) -> bool:
        """Some sentence holds each of at least two distinct question words."""
        words = list(dict.fromkeys(tokens))
        if len(words) < 2:
            return False
        forms = [terms([w, *translations([w], self.index.lexicon)]) for w in words]
        for s in sentences:
            have = self._tokens(s.row)
            if all(any(f in have for f in alts) for alts in forms):
                return True
        return False

    def _tokens(self, row: int) -> frozenset[str]:
        words = self._sentence_tokens.get(row)
        if words is None:
            text = self.index.sentences[row].text
            words = self._sentence_tokens[row] = frozenset(terms(tokenize(text, self.index.cutter)))
        return words

    def _position(self, hit: Hit) -> int:
        return self._positions[hit.chunk.id]


def _baseline(index: IndexData) -> dict:
    """`rag.decision.everyday_baseline` of this index: as the build recorded it
    in the manifest, or measured here for an index written without it."""
    from .decision import everyday_baseline

    recorded = index.manifest.get("baseline")
    if isinstance(recorded, dict):
        return {lang: (float(pair[0]), float(pair[1])) for lang, pair in recorded.items()}
    return everyday_baseline(index.background, index.sentence_views)


_QUOTED = re.compile(r"[“\"「『《]([^”\"」』》]{2,30})[”\"」』》]")


def quoted_found(question: str, sentences: list[ScoredSentence]) -> bool:
    """The question quotes the article's own words (“谄媚”, "sycophancy") and
    one of `sentences` holds every quoted phrase: it asks about exactly that,
    however far the rest of it ("英文原词是什么?") is from the sentence.

    >>> from rag.records import Chunk, Sentence
    >>> ch = Chunk("c", "a.txt", "", 1, 0, 12, "他研究了“谄媚”现象。")
    >>> found = [ScoredSentence(Sentence("c", "a.txt", "", 1, 0, 12, ch.text), ch, 0.8, 0)]
    >>> quoted_found("“谄媚”的英文原词是什么?", found), quoted_found("“拍马屁”是什么?", found)
    (True, False)
    """
    phrases = [p.strip() for p in _QUOTED.findall(question) if len(p.strip()) >= 2]
    return bool(phrases) and any(all(p in s.sentence.text for p in phrases) for s in sentences)


def _lap(timings: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    timings[name] = round((now - since) * 1000, 3)
    return now
