"""Answering without an LLM: pick the sentences that answer, or abstain.

The answer is extractive and faithful: the 1–4 best, non-redundant sentences
from the retrieved chunks, in article order, each followed by its citation
marker `[n]`. When nothing scores high enough the answer says plainly, in the
question's language, that the article does not say, and the nearest passages
go to `closest` instead of `citations`.

>>> detect_lang("why did he leave?"), detect_lang("他为什么离开 Anthropic?")
('en', 'zh')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from .citations import make_citations
from .decision import Decision, DecisionModel, detect_lang, features
from .errors import ModelError
from .records import Answer, Citation, Retrieval, ScoredSentence

# Further sentences must score within this of the best. 0.07 rather than 0.05:
# on the independently written q167-q213 of eval/questions.jsonl answer
# accuracy 0.784 -> 0.838 (2.65 -> 2.92 sentences an answer), the rest of the
# dev set 0.855 -> 0.862; at 0.08 nothing changes further.
MARGIN = 0.07
REDUNDANT = 0.93  # sentence-vector cosine above which two sentences say the same
NOT_SAID = {
    "zh": "文章没有提到这一点。",
    "en": "The article does not say.",
}
LEAD = {"zh": "", "en": "The article says: "}
# An answer quoting a document in another language, when the document has no
# renderings into the asker's (rag.renderings).
NO_RENDERINGS = {
    "en": "Quoted in the document's own language: these sentences have no English rendering yet "
    "(add them with `python -m rag translate`).",
    "zh": "引文保留原文语言：这些句子还没有中文译文(可用 `python -m rag translate` 添加)。",
}


@dataclass(frozen=True)
class Policy:
    top_k: int = 4
    margin: float = MARGIN
    # The fitted decision (rag.decision): `model`, fitted across documents, and
    # `own_model`, fitted on the worked examples, for answers from the sentences they are about.
    model: DecisionModel | None = None
    own_model: DecisionModel | None = None
    own_rows: frozenset[int] = frozenset()


def decide(lang: str, found: Retrieval, policy: Policy) -> Decision:
    """Answer or abstain, why, and the score the choice rests on."""
    if not found.sentences:
        return Decision(True, "nothing was retrieved", 0.0)
    mine = policy.own_model is not None and found.sentences[0].row in policy.own_rows
    model = policy.own_model if mine else policy.model
    if model is None:
        raise ModelError("No answer decision is loaded (rag/decision.json); restore it from git.")
    return model.decide(features(found, lang, policy.top_k, model.prior))


def select(found: Retrieval, vectors: np.ndarray, policy: Policy) -> list[ScoredSentence]:
    """The best sentence, plus close runners-up from the same document that
    add something new, each with the sentence that carries it on (see
    `continues`). One answer quotes one document: a runner-up from another
    one is a near miss about something else, not a second source."""
    ranked = [s for s in found.sentences if s.sentence.source == found.sentences[0].sentence.source]
    best = ranked[0].score
    chosen: list[ScoredSentence] = []
    for cand in ranked:
        if len(chosen) >= policy.top_k or cand.score < best - policy.margin:
            break
        if any(_same(cand, c, vectors) for c in chosen):
            continue
        chosen.append(cand)
    by_row = {s.row: s for s in ranked if s.row >= 0}
    rows = {c.row for c in chosen}
    follow = [by_row[c.row + 1] for c in chosen if c.row + 1 not in rows and continues(c, by_row.get(c.row + 1))]
    return chosen + follow


# A sentence that opens by pointing back ("它会不会…", "诗中有一句话:"), or
# follows one that ends in a colon, is the rest of that sentence's point:
# "which line does it quote?" is answered by the line, not by "he attached
# a poem".
_CARRIES_ON = re.compile(r"^[「“\"]?(?:它|它们|诗中|其中|即|也就是说|换句话说|具体来说|例如|比如)")
_OPENS = re.compile(r"[:：]\s*$")  # not "?": the article's questions are rhetorical


def continues(first: ScoredSentence, nxt: ScoredSentence | None) -> bool:
    """`nxt` follows `first` in its chunk and carries its point on.

    >>> from rag.records import Chunk, Sentence
    >>> ch = Chunk("c", "a.txt", "", 1, 0, 20, "他附上了一首诗。诗中有一句话。或许如此。")
    >>> a, b, c = (ScoredSentence(Sentence("c", "a.txt", "", 1, i, j, ch.text[i:j]), ch, 0.9, r)
    ...            for r, (i, j) in enumerate(((0, 8), (8, 15), (15, 20))))
    >>> continues(a, b), continues(b, c)
    (True, False)
    """
    if nxt is None or nxt.chunk.id != first.chunk.id or nxt.sentence.start < first.sentence.end:
        return False
    return bool(_OPENS.search(first.sentence.text) or _CARRIES_ON.match(nxt.sentence.text))


def _same(a: ScoredSentence, b: ScoredSentence, vectors: np.ndarray) -> bool:
    ta, tb = a.sentence.text, b.sentence.text
    if ta in tb or tb in ta:
        return True
    return min(a.row, b.row) >= 0 and float(vectors[a.row] @ vectors[b.row]) > REDUNDANT


def compose(question: str, found: Retrieval, vectors: np.ndarray, policy: Policy) -> Answer:
    """The extractive answer (or the abstention) for one retrieval: in the
    asker's language when the quoted document has renderings into it
    (rag.renderings), else in the document's own, with a notice saying so."""
    lang = detect_lang(question)
    decision = decide(lang, found, policy)
    if decision.abstained:
        return abstention(question, lang, found, decision)
    chosen = select(found, vectors, policy)
    citations = make_citations(chosen)  # numbered by relevance: [1] is the strongest
    doc_lang = chosen[0].sentence.lang or lang
    rendered = doc_lang != lang and all(s.sentence.rendering for s in chosen)
    if rendered:
        citations = [replace(c, quote_translation=translate_quote(c, chosen)) for c in citations]
    in_order = sorted(citations, key=lambda c: (c.source, c.start + c.text.find(c.quote)))
    sep = " " if rendered and lang == "en" else ""
    body = sep.join(f"{_flat(c.quote_translation if rendered else c.quote)}[{c.n}]" for c in in_order)
    notice = "" if rendered or doc_lang == lang else NO_RENDERINGS[lang]
    answer_lang = lang if rendered else doc_lang
    return Answer(
        question,
        LEAD[answer_lang] + body,
        False,
        tuple(citations),
        (),
        lang=answer_lang,
        decision=decision,
        notice=notice,
    )


def translate_quote(citation: Citation, chosen: list[ScoredSentence]) -> str:
    """The renderings of the chosen sentences a citation quotes, in document order."""
    at = citation.start + citation.text.find(citation.quote)
    inside = sorted(
        (s.sentence for s in chosen if s.sentence.source == citation.source),
        key=lambda s: s.start,
    )
    inside = [s for s in inside if at <= s.start and s.end <= at + len(citation.quote)]
    sep = " " if inside and detect_lang(inside[0].rendering) == "en" else ""
    return sep.join(dict.fromkeys(s.rendering for s in inside if s.rendering))


def abstention(question: str, lang: str, found: Retrieval, decision: Decision) -> Answer:
    """ "The article does not say", with the best sentence of each of the three
    nearest chunks as `closest` (never as citations), rendered in the asker's
    language where the document has renderings."""
    nearest = _one_per_chunk(found.sentences)[:3]
    closest = [
        replace(c, quote_translation=translate_quote(c, nearest)) if s.sentence.lang not in ("", lang) else c
        for c, s in zip(make_citations(nearest), nearest, strict=True)
    ]
    return Answer(question, NOT_SAID[lang], True, (), tuple(closest), lang=lang, decision=decision)


def _flat(quote: str) -> str:
    return " ".join(quote.split("\n"))


def _one_per_chunk(sentences: list[ScoredSentence]) -> list[ScoredSentence]:
    seen, out = set(), []
    for s in sentences:
        if s.chunk.id not in seen:
            seen.add(s.chunk.id)
            out.append(s)
    return out
