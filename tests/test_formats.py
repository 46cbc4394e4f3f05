"""Documents in other formats: real files made by real tools (tests/fixtures/formats/make_fixtures.py).

Each loads with the right pages, headings and offsets (slicing the reduced
text gives every paragraph back), or is reported by name with its own
message; one bad file never keeps the others out of an index.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.errors import SeedsError
from rag.seeds import read_seed, read_seeds

from .conftest import rag

FIXTURES = Path(__file__).with_name("fixtures") / "formats"


def _load(name: str, tmp_path: Path):
    shutil.copy(FIXTURES / name, tmp_path / name)
    return read_seed(tmp_path / name, tmp_path)


def _offsets_hold(doc) -> None:
    assert doc.paragraphs
    for p in doc.paragraphs:
        assert doc.text[p.start : p.end] == p.text


def test_a_pdf_keeps_its_pages_and_title(tmp_path: Path) -> None:
    doc = _load("report.pdf", tmp_path)
    _offsets_hold(doc)
    assert doc.title == "Harbour Survey 2024"
    pages = {p.text: p.page for p in doc.paragraphs}
    assert pages["The survey counted forty fishing boats in the harbour during the summer."] == 2
    assert [p.page for p in doc.paragraphs if "340 metres" in p.text] == [3]
    assert all(p.page in (1, 2, 3) for p in doc.paragraphs)


def test_a_docx_keeps_its_heading_path(tmp_path: Path) -> None:
    doc = _load("notes.docx", tmp_path)
    _offsets_hold(doc)
    assert doc.title == "Ferry notes"
    sections = {p.text: p.section for p in doc.paragraphs}
    assert sections["Ferries leave twice a day in summer."] == "Ferry notes › Timetable"
    assert sections["A return ticket costs nine pounds."] == "Ferry notes › Fares"
    assert all(p.page is None for p in doc.paragraphs)


def test_a_saved_web_page_keeps_its_article_not_its_menus(tmp_path: Path) -> None:
    doc = _load("page.html", tmp_path)
    _offsets_hold(doc)
    text = " ".join(p.text for p in doc.paragraphs)
    assert "Stalls open at five in the morning" in text and "Tomas Reid" in text
    assert "Contact us" not in text and "Cookie settings" not in text and "subscribe" not in text
    opening = next(p for p in doc.paragraphs if p.text.startswith("Stalls open"))
    assert opening.section.endswith("Opening hours")


def test_bom_windows_line_endings_and_gbk_text(tmp_path: Path) -> None:
    bom = _load("bom-crlf.zh.txt", tmp_path)
    assert [p.text for p in bom.paragraphs] == ["港口在 1998 年重新开放。", "北堤长 340 米。"]
    assert "\r" not in bom.text and not bom.text.startswith("\ufeff")
    gbk = _load("gbk.zh.txt", tmp_path)
    assert gbk.paragraphs[0].text == "灯塔由工程师 Agnes Varga 重建。"
    _offsets_hold(bom)
    _offsets_hold(gbk)


@pytest.mark.parametrize(
    ("name", "message"),
    [("corrupt.pdf", "cannot be read as PDF"), ("scanned.pdf", "has no text layer")],
)
def test_a_broken_or_scanned_pdf_is_named_with_its_reason(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(SeedsError, match=message) as err:
        _load(name, tmp_path)
    assert name in str(err.value)


def test_one_bad_file_is_reported_and_the_rest_are_indexed(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("report.pdf", "notes.docx", "corrupt.pdf", "scanned.pdf"):
        shutil.copy(FIXTURES / name, seeds / name)
    (seeds / "photo.png").write_bytes(b"\x89PNG\r\n")
    docs, problems = read_seeds(seeds)
    assert sorted(d.source for d in docs) == ["notes.docx", "report.pdf"]
    assert len(problems) == 3 and any("photo.png" in p for p in problems)
    index = tmp_path / "index"
    run = rag("build", index=index, seeds=seeds, RAG_EXAMPLES="none")
    assert run.returncode == 0, run.stderr
    assert "2 documents" in run.stdout and "skipped" in run.stdout and "scanned.pdf" in run.stdout
    asked = rag("ask", "--json", "How long is the north pier?", index=index, seeds=seeds, RAG_EXAMPLES="none")
    (top, *rest) = json.loads(asked.stdout)["citations"]
    assert top["source"] == "report.pdf" and top["page"] == 3 and "340 metres" in top["quote"]
    assert all(c["source"] == "report.pdf" for c in rest)  # one answer quotes one document
    # Restricted to the other document, the same question can only draw on it.
    pier = "How long is the north pier?"
    other = rag("ask", "--json", "--source", "notes.docx", pier, index=index, seeds=seeds, RAG_EXAMPLES="none")
    reply = json.loads(other.stdout)
    assert {c["source"] for c in reply["citations"] or reply["closest"]} == {"notes.docx"}
    assert {c["title"] for c in reply["citations"] or reply["closest"]} == {"Ferry notes"}  # the file's own title
    unknown = rag("ask", "--source", "nope.pdf", pier, index=index, seeds=seeds, RAG_EXAMPLES="none")
    assert unknown.returncode == 2 and "No document 'nope.pdf'" in unknown.stderr and "notes.docx" in unknown.stderr


def test_nothing_readable_is_an_error_naming_every_file(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("corrupt.pdf", "scanned.pdf"):
        shutil.copy(FIXTURES / name, seeds / name)
    run = rag("build", index=tmp_path / "index", seeds=seeds, RAG_EXAMPLES="none")
    assert run.returncode != 0 and "corrupt.pdf" in run.stderr and "scanned.pdf" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "index").exists()
