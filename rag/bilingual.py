"""Documents in two languages in one index: making their cosines comparable.

e5 puts a question closer to text in its own language than to text in the
other, whatever it asks: with a Chinese and an English document indexed
together, a Chinese question about the English one is answered from the
Chinese one. Where renderings (rag.renderings) make every passage readable in
the question's language, the retriever reads them instead; this module owns
the comparison where they do not.

For a question in language L the passages of documents in L are its *own*;
the rest are *foreign*. Its own meet the question as asked; foreign ones meet
it with its translations appended (rag.lexicon.expand), each language
searched apart, and their cosines are mapped onto its own language's scale.
The yardstick is the everyday questions (rag.offtopic), which are about
nothing in the seeds: how close they come to each language's sentences is how
close any question comes by language alone. `language_nulls` measures it at
build time; `calibrate` turns it into two maps for the foreign cosines, one to
rank by (from the everyday questions with their translations, as the foreign
passages are met) and one for the answer decision (from the questions as
asked: the scale the decision was fitted on, each document alone).

>>> nulls = {"zh": {"own": (0.87, 0.01), "foreign_asked": (0.80, 0.01),
...          "foreign_glossed": (0.82, 0.02), "lift": (0.875, 0.01)}}
>>> b = calibrate(nulls, "zh")
>>> round(b.rank[0] * 0.86 + b.rank[1], 4), round(b.decide[0] * 0.86 + b.decide[1], 4), b.baseline
(0.89, 0.93, (0.875, 0.01))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chunking import RENDERING_VIEW
from .decision import best_cosines, detect_lang, spread_by_language
from .search import ChunkSearch, Where, ranked

LANGUAGES = ("en", "zh")


def written_in(sentences: list, lang: str) -> np.ndarray:
    """Which sentences belong to documents in `lang` (`Sentence.lang`, set at
    build; the text's own language where unknown). Chunks are grouped the same
    way by rag.search.chunk_langs."""
    return np.array([(s.lang or detect_lang(s.text)) == lang for s in sentences], dtype=bool)


def mixed(sentences: list) -> list[str]:
    """The question languages for which the index holds documents in both languages."""
    out = []
    for lang in LANGUAGES:
        rows = written_in(sentences, lang)
        if rows.any() and not rows.all():
            out.append(lang)
    return out


def language_nulls(
    background: np.ndarray,
    glossed: np.ndarray,
    questions: list[str],
    sentence_views: np.ndarray,
    sentences: list,
    languages: list[str],
) -> dict:
    """Per question language of `languages` (those of `mixed` the renderings do not bridge):
    (mean, spread) of the everyday questions' best sentence cosine over the
    documents in its language ("own"), over the others as asked and with
    translations (`glossed`; "foreign_asked", "foreign_glossed"), and of the
    best over both as the decision reads it ("lift": `Bilingual.decide`
    applied to the foreign best). Renderings are not read here: a language
    they bridge everywhere is read through them instead (rag.retrieval)."""
    q_langs = [detect_lang(q) for q in questions]
    plain = sentence_views[:RENDERING_VIEW]
    out = {}
    for lang in languages:
        if lang not in q_langs:
            continue
        own = written_in(sentences, lang)
        mine = best_cosines(background, plain[:, own])
        theirs = best_cosines(background, plain[:, ~own])
        stats = {
            "own": spread_by_language(mine, q_langs)[lang],
            "foreign_asked": spread_by_language(theirs, q_langs)[lang],
            "foreign_glossed": spread_by_language(best_cosines(glossed, plain[:, ~own]), q_langs)[lang],
        }
        scale, shift = affine(stats["own"], stats["foreign_asked"])
        stats["lift"] = spread_by_language(np.maximum(mine, scale * theirs + shift), q_langs)[lang]
        out[lang] = stats
    return out


def affine(own: tuple[float, float], theirs: tuple[float, float]) -> tuple[float, float]:
    """(scale, shift) taking the distribution `theirs` (mean, spread) onto `own`."""
    scale = own[1] / max(theirs[1], 1e-6)
    return scale, own[0] - scale * theirs[0]


@dataclass(frozen=True)
class Bilingual:
    """How a question in one language reads an index with foreign passages:
    the foreign cosines mapped by `rank` to rank them and by `decide` for the
    answer decision (each a (scale, shift)); `baseline` is the decision's
    (rag.decision.features); `own_rows` marks the sentences in the
    question's language; `asked` is the question's vector as asked, filled
    in per question."""

    rank: tuple[float, float]
    decide: tuple[float, float]
    baseline: tuple[float, float]
    asked: np.ndarray | None = None
    own_rows: np.ndarray | None = None


def calibrate(nulls: dict, lang: str) -> Bilingual | None:
    """The maps for a question in `lang` from `language_nulls`; None when the
    index has nothing foreign to it."""
    stats = nulls.get(lang)
    if not stats:
        return None
    own = tuple(stats["own"])
    return Bilingual(
        affine(own, tuple(stats["foreign_glossed"])), affine(own, tuple(stats["foreign_asked"])), tuple(stats["lift"])
    )


def search(
    chunks: ChunkSearch, qvec: np.ndarray, how: Bilingual, n: int, source: str, lang: str
) -> tuple[list[int], list[float]]:
    """The `n` chunks closest to a question in `lang`, best first: those in
    its language by `how.asked`, the others by `qvec` mapped by `how.rank`;
    only `source`'s when given. Each language is searched apart, so neither
    crowds the other out."""
    best: dict[int, float] = {}
    for foreign, vec, (scale, shift) in ((False, how.asked, (1.0, 0.0)), (True, qvec, how.rank)):
        for i, s in chunks.dense(vec, n, Where(source=source, lang=lang, foreign=foreign)):
            best[i] = scale * s + shift
    found = ranked(best, n)
    return [i for i, _ in found], [s for _, s in found]
