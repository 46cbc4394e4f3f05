"""Chunking: heading-aware chunks and sentences that never cut a sentence.

Each section's body is split by `langchain-text-splitters` on line breaks and
sentence ends (Chinese `。！？；…` and their ASCII forms, with closing quotes
kept on their sentence), then pieces are merged up to `chunk_size`
characters. A chunk never crosses a section heading, and a too-small chunk is
merged into its neighbour. Every chunk and sentence keeps offsets into its
file; chunk ids hash the source, offsets and text, so a rebuild of unchanged
seeds gives the same ids.

>>> [s for _, _, s in split_sentences("他说:“好。”然后走了!OK.")]
['他说:“好。”', '然后走了!', 'OK.']
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

from .records import Chunk, Document, Paragraph, Sentence

# A sentence ends at terminal punctuation plus any closing quotes/brackets.
# ASCII '.' only counts before whitespace or end, so "2.5" and "e.g" survive.
SENTENCE_END = r"(?:[。！？；…!?;]+|\.(?=\s|$))[”’」』\"'》）)]*"
_SENTENCE = re.compile(rf".+?(?:{SENTENCE_END}|$)", re.S)


def split_sentences(text: str, offset: int = 0) -> Iterator[tuple[int, int, str]]:
    """Yield (start, end, sentence) for one paragraph; offsets are absolute."""
    for m in _SENTENCE.finditer(text):
        raw = m.group()
        s = raw.strip()
        if s:
            start = offset + m.start() + (len(raw) - len(raw.lstrip()))
            yield start, start + len(s), s


def _splitter(chunk_size: int):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    # No "" fallback: a sentence longer than chunk_size stays whole.
    return RecursiveCharacterTextSplitter(
        separators=["\n", SENTENCE_END],
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=0,
        strip_whitespace=True,
    )


def _sections(doc: Document) -> Iterator[list[Paragraph]]:
    group: list[Paragraph] = []
    for p in doc.paragraphs:
        if group and p.section != group[-1].section:
            yield group
            group = []
        group.append(p)
    if group:
        yield group


_INTRO_END = (":", "：")  # "他在信中明确表示:" introduces the next line


def _merge_small(spans: list[tuple[int, int]], text: str, size: int, minimum: int) -> list[tuple[int, int]]:
    """Join a span to the one before when either is shorter than `minimum` and
    the sum fits in `size`, or when the one before ends by introducing it."""
    out: list[tuple[int, int]] = []
    for start, end in spans:
        prev = out[-1] if out else None
        small = prev and (end - start < minimum or prev[1] - prev[0] < minimum) and end - prev[0] <= size
        intro = prev and text[prev[0] : prev[1]].endswith(_INTRO_END)
        if small or intro:
            out[-1] = (prev[0], end)
        else:
            out.append((start, end))
    return out


def _join_intros(found: list[tuple[int, int, str]], text: str) -> list[tuple[int, int, str]]:
    """A sentence ending in a colon is one unit with the sentence it introduces."""
    out: list[tuple[int, int, str]] = []
    for start, end, s in found:
        if out and out[-1][2].endswith(_INTRO_END):
            first = out.pop()
            out.append((first[0], end, text[first[0] : end]))
        else:
            out.append((start, end, s))
    return out


def chunk_section(doc: Document, paras: Sequence[Paragraph], size: int, minimum: int) -> list[tuple[int, int]]:
    """Character spans (start, end) of the chunks of one section."""
    base = paras[0].start
    body = doc.text[base : paras[-1].end]
    spans, cursor = [], 0
    for piece in _splitter(size).split_text(body):
        at = body.index(piece, cursor)
        spans.append((base + at, base + at + len(piece)))
        cursor = at + len(piece)
    return _merge_small(spans, doc.text, size, minimum)


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    digest = hashlib.sha256(f"{source}\0{start}\0{end}\0{text}".encode()).hexdigest()
    return digest[:16]


def chunk_document(doc: Document, size: int = 220, minimum: int = 60) -> tuple[list[Chunk], list[Sentence]]:
    """All chunks of a document, and the sentences inside them."""
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for paras in _sections(doc):
        for start, end in chunk_section(doc, paras, size, minimum):
            inside = [p for p in paras if p.start < end and p.end > start]
            text = doc.text[start:end]
            cid = chunk_id(doc.source, start, end, text)
            first = inside[0]
            chunks.append(Chunk(cid, doc.source, first.section, first.paragraph, start, end, text, first.page))
            found = [
                (s_start, s_end, s)
                for p in inside
                for s_start, s_end, s in split_sentences(p.text, p.start)
                if start <= s_start and s_end <= end
            ]
            for s_start, s_end, s in _join_intros(found, doc.text):
                p = next(p for p in inside if p.start <= s_start < p.end)
                sentences.append(Sentence(cid, doc.source, p.section, p.paragraph, s_start, s_end, s, p.page))
    return chunks, sentences


def chunk_documents(docs: Sequence[Document], size: int = 220, minimum: int = 60) -> tuple[list[Chunk], list[Sentence]]:
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for doc in docs:
        c, s = chunk_document(doc, size, minimum)
        chunks += c
        sentences += s
    return chunks, sentences


CONTEXT_CHARS = 40


IN_CONTEXT_VIEW = 2  # which of `sentence_views` reads the sentence after the one before
# The rendering: only a question in the rendering's language reads it (rag.retrieval); for one
# in the document's own it is a cross-lingual near-copy of the first view that only adds noise.
RENDERING_VIEW = 3


def sentence_views(sentences: Sequence[Sentence]) -> list[list[str]]:
    """The texts embedded for each sentence: alone, under its heading, after
    the end of the sentence before it, and its rendering in the other language
    (rag.renderings; the sentence itself without one). A question may match
    any of them; a short sentence ("对他而言,这意味着离开。") needs its context
    to mean much, and a question meets text in its own language in the last."""
    alone = [s.text for s in sentences]
    headed = [f"{s.section}\n{s.text}" if s.section else s.text for s in sentences]
    after = [
        (sentences[i - 1].text[-CONTEXT_CHARS:] if i and sentences[i - 1].chunk_id == s.chunk_id else "") + s.text
        for i, s in enumerate(sentences)
    ]
    rendered = [s.rendering or s.text for s in sentences]
    return [alone, headed, after, rendered]


def chunk_renderings(chunks: Sequence[Chunk], sentences: Sequence[Sentence]) -> list[str]:
    """Each chunk in the other language, from its sentences' renderings
    (rag.renderings), "" for a chunk none of whose sentences has one. Dense
    search reads it for a question the renderings bridge: a Chinese question
    finds an English document's passages, not only the Chinese ones.

    >>> from rag.records import Chunk, Sentence
    >>> ch = Chunk("c", "a.txt", "", 1, 0, 8, "他走了。没说原因。")
    >>> ss = [Sentence("c", "a.txt", "", 1, 0, 4, "他走了。", rendering="He left."),
    ...       Sentence("c", "a.txt", "", 1, 4, 9, "没说原因。")]
    >>> chunk_renderings([ch], ss)
    ['He left. 没说原因。']
    """
    parts: dict[str, list[Sentence]] = {}
    for s in sentences:
        parts.setdefault(s.chunk_id, []).append(s)
    out = []
    for c in chunks:
        own = parts.get(c.id, [])
        out.append(" ".join(s.rendering or s.text for s in own) if any(s.rendering for s in own) else "")
    return out
