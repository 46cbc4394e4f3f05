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
build time; `calibrate` turns it into two maps for the foreign cosines: one
for them met with the translations (from the everyday questions with theirs)
and one for them met as asked (from the questions as asked: also the scale
the decision was fitted on, each document alone). A foreign passage is ranked
by a mix of both readings (`Bilingual.foreign`), whose share per question
language `python -m eval.fit_bilingual` chose on the training corpora
(`rag/bilingual.json`, read by `load_shares`).

>>> nulls = {"zh": {"own": (0.87, 0.01), "foreign_asked": (0.80, 0.01),
...          "foreign_glossed": (0.82, 0.02), "lift": (0.875, 0.01)}}
>>> b = calibrate(nulls, "zh", {"zh": 0.5})
>>> round(b.rank[0] * 0.86 + b.rank[1], 4), round(b.decide[0] * 0.86 + b.decide[1], 4), b.baseline
(0.89, 0.93, (0.875, 0.01))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunking import RENDERING_VIEW
from .decision import best_cosines, detect_lang, params_sha256, spread_by_language
from .errors import ModelError
from .search import ChunkSearch, Where, ranked

LANGUAGES = ("en", "zh")
SHARES = Path(__file__).with_name("bilingual.json")
SHARES_FORMAT = "letter-rag-bilingual"


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
    `rank` maps their cosines to the question with its translations, and
    `decide` those to the question as asked (each a (scale, shift));
    `asked_share` weighs the two readings for ranking (`foreign`), and the
    answer decision reads the translated cosine through `decide`;
    `baseline` is the decision's (rag.decision.features); `own_rows` marks
    the sentences in the question's language; `asked` is the question's
    vector as asked, filled in per question."""

    rank: tuple[float, float]
    decide: tuple[float, float]
    baseline: tuple[float, float]
    asked: np.ndarray | None = None
    own_rows: np.ndarray | None = None
    asked_share: float = 0.5

    def foreign(self, glossed: np.ndarray | float, asked: np.ndarray | float) -> np.ndarray | float:
        """A foreign passage's score on the question's own scale, from its
        cosines to the question with translations and as asked, each mapped
        by its own null, weighed `asked_share` to the second: a match through
        the dictionary's glosses alone ("released" → 发布) then counts less.

        >>> b = Bilingual(rank=(1.0, 0.1), decide=(2.0, -0.8), baseline=(0.0, 1.0))
        >>> round(b.foreign(0.8, 0.85), 4), round(b.foreign(0.8, 0.95), 4)
        (0.9, 1.0)
        """
        return (1 - self.asked_share) * (self.rank[0] * glossed + self.rank[1]) + self.asked_share * (
            self.decide[0] * asked + self.decide[1]
        )


def calibrate(nulls: dict, lang: str, shares: dict[str, float]) -> Bilingual | None:
    """The maps for a question in `lang` from `language_nulls`, and its
    language's share of the as-asked reading (`load_shares`); None when the
    index has nothing foreign to it."""
    stats = nulls.get(lang)
    if not stats:
        return None
    own = tuple(stats["own"])
    return Bilingual(
        affine(own, tuple(stats["foreign_glossed"])),
        affine(own, tuple(stats["foreign_asked"])),
        tuple(stats["lift"]),
        asked_share=shares.get(lang, 0.5),
    )


def load_shares(path: Path = SHARES) -> dict[str, float]:
    """Each question language's share of the as-asked reading of a foreign
    passage (`Bilingual.foreign`), as `python -m eval.fit_bilingual` chose it
    on the training corpora; ModelError when the file is missing, damaged or edited."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != SHARES_FORMAT or data.get("version") != 1:
            raise ValueError(f"not a {SHARES_FORMAT} file of version 1")
        shares = {str(k): float(v) for k, v in data["asked_share"].items()}
        if params_sha256(shares) != data.get("params_sha256") or not all(0 <= v <= 1 for v in shares.values()):
            raise ValueError("its parameters do not match their checksum")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelError(
            f"The language weights {path} cannot be used: {e}. Restore it from git or run python -m eval.fit_bilingual."
        ) from None
    return shares


def search(
    chunks: ChunkSearch, qvec: np.ndarray, how: Bilingual, n: int, source: str, lang: str
) -> tuple[list[int], list[float]]:
    """The `n` chunks closest to a question in `lang`, best first: those in
    its language by `how.asked`, the others found by `qvec` (the question
    with its translations) and scored by `how.foreign`; only `source`'s when
    given. Each language is searched apart, so neither crowds the other out."""
    best = dict(chunks.dense(how.asked, n, Where(source=source, lang=lang, foreign=False)))
    theirs = chunks.dense(qvec, n, Where(source=source, lang=lang, foreign=True))
    asked = chunks.cosines(how.asked, [i for i, _ in theirs])
    best.update((i, how.foreign(s, a)) for (i, s), a in zip(theirs, asked, strict=True))
    found = ranked(best, n)
    return [i for i, _ in found], [s for _, s in found]
