"""The words of a corpus, made once per build: each chunk's BM25 terms
(`rag.lexical.terms`), the `bm25s` index over them, and the lexicon between
the languages' words (`rag.lexicon`). Both stores keep them: the folder as
`bm25/` and `lexicon.json`, Milvus as sparse vectors and a meta file.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import Chunk


@dataclass(frozen=True)
class ChunkWords:
    """Each chunk's BM25 terms (rag.lexical.terms), and the lexicon between the languages' words
    (`rag.lexicon`): made once per build, as the worked examples need the
    lexicon before the index is written."""

    tokens: list[list[str]]
    lexicon: dict[str, list[str]]
    dictionary: dict  # rag.lexical.corpus_dictionary of the chunks


def chunk_words(chunks: list[Chunk], rendered: list[str] | None = None) -> ChunkWords:
    """The chunks' words, each with those of its rendering (`chunking.chunk_renderings`)
    when it has one: BM25 then matches a question's own words in either language."""
    from .decision import detect_lang
    from .lexical import corpus_dictionary, cut, is_latin, terms, tokenize
    from .lexicon import build_lexicon, build_pinyin, build_reverse, english_words

    texts = [c.embed_text() for c in chunks]
    if rendered:
        texts = [f"{t}\n{r}" if r else t for t, r in zip(texts, rendered, strict=True)]
    tokens = [tokenize(t) for t in texts]  # whole words: the dictionaries translate those
    lexicon = build_lexicon({t for row in tokens for t in row if len(t) >= 2}, cut)
    # Only the words of chunks in English: an English name in Chinese text is read as it is written.
    english = {t for c, row in zip(chunks, tokens, strict=True) if detect_lang(c.text) == "en" for t in row}
    reverse = build_reverse(t for t in english if is_latin(t) and len(t) >= 2)
    chinese = {t for row in tokens for t in row if not is_latin(t)}
    pinyin = build_pinyin(chinese, english_words()) if chinese else {}
    bm25_terms = [terms(row) for row in tokens]
    return ChunkWords(bm25_terms, {**lexicon, **reverse, **pinyin}, corpus_dictionary([*texts, " ".join(reverse)]))


def bm25_index(tokens: list[list[str]]):
    import bm25s

    bm25 = bm25s.BM25()
    # Word ids in order of first use: from plain token lists bm25s numbers the
    # words in set order, which changes with every process (string hashing),
    # so two builds of the same seeds wrote different bytes.
    vocab: dict[str, int] = {}
    # An empty token list breaks bm25s; a placeholder keeps row numbers aligned.
    ids = [[vocab.setdefault(t, len(vocab)) for t in row or ["\u2205"]] for row in tokens]
    bm25.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    return bm25
