"""Seeds loading and chunking on the real article."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.chunking import SENTENCE_END, chunk_documents, split_sentences
from rag.errors import SeedsError
from rag.seeds import load_seeds

from .conftest import SEED


def test_paragraph_offsets_slice_back_and_sections_found(seeds_copy: Path) -> None:
    (doc,) = load_seeds(seeds_copy)
    assert doc.source == SEED.name
    for p in doc.paragraphs:
        assert doc.text[p.start : p.end] == p.text
    sections = list(dict.fromkeys(p.section for p in doc.paragraphs))
    assert sections == ["", "一位 AI 高级安全负责人写的辞职信", "“多重危机”之下的冲突",
                        "从代码到诗行:一场关于“认知方式”的转向", "当安全专家选择离开"]  # fmt: skip
    assert [p.paragraph for p in doc.paragraphs if p.section == sections[1]][:3] == [1, 2, 3]


def test_chunks_never_cut_a_sentence(seeds_copy: Path) -> None:
    docs = load_seeds(seeds_copy)
    chunks, sentences = chunk_documents(docs)
    text = docs[0].text
    ends = re.compile(SENTENCE_END + r"$")
    for c in chunks:
        assert text[c.start : c.end] == c.text
        # a chunk ends at a sentence end (or the end of a line, e.g. a colon intro)
        assert ends.search(c.text) or text[c.end : c.end + 1] in ("\n", "")
    # every sentence of every paragraph lies whole inside one chunk
    for p in docs[0].paragraphs:
        for start, end, _ in split_sentences(p.text, p.start):
            assert any(c.start <= start and end <= c.end for c in chunks), text[start:end]
    for s in sentences:
        assert text[s.start : s.end] == s.text


def test_chunk_sizes_are_checkable_at_a_glance(seeds_copy: Path) -> None:
    chunks, _ = chunk_documents(load_seeds(seeds_copy), size=220, minimum=60)
    sizes = sorted(len(c.text) for c in chunks)
    assert sizes[0] >= 60 and sizes[-1] <= 260, sizes


def test_chunk_ids_are_stable_and_content_derived(seeds_copy: Path) -> None:
    first, _ = chunk_documents(load_seeds(seeds_copy))
    again, _ = chunk_documents(load_seeds(seeds_copy))
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    changed = seeds_copy / SEED.name
    changed.write_text(changed.read_text(encoding="utf-8").replace("2 月 9 日", "2 月 10 日"), encoding="utf-8")
    edited, _ = chunk_documents(load_seeds(seeds_copy))
    assert [c.id for c in edited] != [c.id for c in first]


def test_closing_quotes_stay_with_their_sentence() -> None:
    got = [s for _, _, s in split_sentences("他写道:“我要走了。”然后离开。Done. 2.5 版本!")]
    assert got == ["他写道:“我要走了。”", "然后离开。", "Done.", "2.5 版本!"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.txt", b"\xff\xfe\xff\xfa text", "neither UTF-8 nor GBK"),
        ("image.png", b"\x89PNG", "cannot read this file type"),
        ("blank.md", b"\n\n   \n", "holds no paragraphs"),
    ],
)
def test_bad_seed_files_name_the_file(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SeedsError, match=message) as err:
        load_seeds(tmp_path)
    assert name in str(err.value)


def test_unreadable_seed_file_names_the_file(tmp_path: Path, monkeypatch) -> None:
    # Tests run as root here, so chmod cannot make a file unreadable: the read fails by hand.
    (tmp_path / "locked.txt").write_text("正文。", encoding="utf-8")
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(SeedsError, match="cannot read \\(Permission denied\\)") as err:
        load_seeds(tmp_path)
    assert "locked.txt" in str(err.value)


def test_empty_or_missing_seeds_folder(tmp_path: Path) -> None:
    with pytest.raises(SeedsError, match=r"holds no documents \(\.txt, \.md, \.pdf"):
        load_seeds(tmp_path)
    with pytest.raises(SeedsError, match="does not exist"):
        load_seeds(tmp_path / "nope")


def test_markdown_headings(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\nFirst line.\n\n## Part two\nSecond line.\n", encoding="utf-8")
    (doc,) = load_seeds(tmp_path)
    assert [(p.section, p.paragraph, p.text) for p in doc.paragraphs] == [
        ("Title", 1, "First line."),
        ("Title › Part two", 1, "Second line."),  # the heading path
    ]


def test_the_query_cutter_cuts_every_corpus_as_the_whole_dictionary_does() -> None:
    """Questions are cut with only the corpus's part of jieba's dictionary
    (rag.lexical.query_cutter); over the corpus itself that must change nothing."""
    from rag.config import REPO
    from rag.lexical import corpus_dictionary, query_cutter, tokenize

    texts = [p.read_text(encoding="utf-8") for p in [SEED, *sorted((REPO / "corpora").glob("*/*.zh.txt"))]]
    assert len(texts) >= 5
    for text in texts:
        dictionary = corpus_dictionary([text])
        assert 500 < len(dictionary["words"]) < 5000  # a sliver of jieba's 349k words
        assert tokenize(text, query_cutter(dictionary)) == tokenize(text)
    other = query_cutter(corpus_dictionary(texts[1:2]))
    assert tokenize(texts[0], other) != tokenize(texts[0])  # another corpus's part does not do
