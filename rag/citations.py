"""Citations: number the supporting sentences and point back into the seeds.

A `Citation` carries the chunk (`text`, with `start`/`end` offsets into the
seed file) and the supporting sentence (`quote`), so a reader can check the
claim at a glance and find it in the file. Adjacent chosen sentences of one
chunk become one citation.

>>> from rag.records import Chunk, Sentence, ScoredSentence
>>> ch = Chunk("c1", "a.txt", "", 1, 0, 6, "甲。乙。丙。")
>>> ss = [ScoredSentence(Sentence("c1", "a.txt", "", 1, i, i + 2, t), ch, 0.9)
...       for i, t in ((0, "甲。"), (2, "乙。"))]
>>> [(c.n, c.quote) for c in make_citations(ss)]
[(1, '甲。乙。')]
"""

from __future__ import annotations

import html
import re

from .records import Citation, ScoredSentence


def make_citations(chosen: list[ScoredSentence]) -> list[Citation]:
    """Citations numbered from 1 in the order given (best first); sentences that
    sit next to each other in one chunk share a citation."""
    groups: list[list[ScoredSentence]] = []
    for s in sorted(chosen, key=lambda s: (s.sentence.source, s.sentence.start)):
        last = groups[-1][-1] if groups else None
        if last and last.chunk.id == s.chunk.id and _adjacent(last, s):
            groups[-1].append(s)
        else:
            groups.append([s])
    rank = {id(s): i for i, s in enumerate(chosen)}
    groups.sort(key=lambda g: min(rank[id(s)] for s in g))
    return [_citation(n, g) for n, g in enumerate(groups, start=1)]


def _adjacent(a: ScoredSentence, b: ScoredSentence) -> bool:
    between = a.chunk.text[a.sentence.end - a.chunk.start : b.sentence.start - a.chunk.start]
    return b.sentence.start >= a.sentence.end and between.strip() == ""


def _citation(n: int, group: list[ScoredSentence]) -> Citation:
    chunk, first, last = group[0].chunk, group[0].sentence, group[-1].sentence
    quote = chunk.text[first.start - chunk.start : last.end - chunk.start]
    return Citation(
        n=n,
        source=chunk.source,
        section=chunk.section if first.section is None else first.section,
        paragraph=first.paragraph,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
        quote=quote,
        score=round(max(s.score for s in group), 4),
        page=first.page,
    )


def highlight_html(citation: Citation) -> str:
    """The passage as escaped HTML with the quote in <mark>; nothing unescaped."""
    text, quote = citation.text, citation.quote
    at = text.find(quote)
    if at < 0:
        return html.escape(text)
    parts = (text[:at], quote, text[at + len(quote) :])
    return f"{html.escape(parts[0])}<mark>{html.escape(parts[1])}</mark>{html.escape(parts[2])}"


_MARKER = re.compile(r"\[(\d+)\]")


def markers(answer: str) -> list[int]:
    """The citation numbers an answer text uses, in order of first use."""
    seen: list[int] = []
    for m in _MARKER.finditer(answer):
        n = int(m.group(1))
        if n not in seen:
            seen.append(n)
    return seen
