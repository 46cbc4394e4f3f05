"""Adding and removing documents (rag.uploads): files checked by their bytes,
names kept inside the seeds folder, and a background build that lets the old
index answer until the new one is in. Fixture files are real (tests/fixtures/formats)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag import uploads
from rag.config import Settings
from rag.errors import InputError
from rag.page import load_about
from rag.pipeline import Pipeline

from .conftest import SEED, make_settings

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
PDF = (FIXTURES / "report.pdf").read_bytes()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.md", "passwd.md"),
        ("C:\\Users\\ann\\notes.docx", "notes.docx"),
        ("  weird name!!.TXT", "weird-name.txt"),
        (".hidden.pdf", "hidden.pdf"),
        ("报告.pdf", "报告.pdf"),
        ("x" * 300 + ".md", "x" * 97 + ".md"),  # 100 characters in all
    ],
)
def test_a_name_becomes_a_plain_file_name(name: str, expected: str) -> None:
    assert uploads.safe_name(name) == expected


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("photo.png", b"\x89PNG\r\n", "only .txt"),
        ("report.pdf", b"just some text", "named .pdf but is"),
        ("notes.txt", PDF, "named .txt but is a PDF file"),
        ("notes.docx", b"PK\x03\x04not really a zip", "named .docx but is not a document"),
        ("empty.md", b"", "is empty"),
        ("big.txt", b"a" * (1024 * 1024 + 1), "the limit is 1 MB"),
        ("binary.txt", b"\x00\x01\x02" * 10, "named .txt but is not a document"),
    ],
)
def test_a_file_that_cannot_be_added_says_why(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        uploads.save(tmp_path, name, data, max_mb=1)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_file_is_saved_inside_the_folder_and_duplicates_are_handled(tmp_path: Path) -> None:
    saved = uploads.save(tmp_path, "../../outside/report.pdf", PDF, max_mb=20)
    assert saved.path == tmp_path / "report.pdf" and saved.path.read_bytes() == PDF and not saved.renamed
    with pytest.raises(InputError, match=r"already in the documents, as report\.pdf"):
        uploads.save(tmp_path, "copy.pdf", PDF, max_mb=20)
    other = (FIXTURES / "gbk.zh.txt").read_bytes()
    again = uploads.save(tmp_path, "report.txt", other, max_mb=20)
    assert again.path.name == "report.txt"
    renamed = uploads.save(tmp_path, "report.txt", "另一份。".encode(), max_mb=20)
    assert renamed.path.name == "report-2.txt" and renamed.renamed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report-2.txt", "report.pdf", "report.txt"]


def test_removing_a_document_takes_its_renderings_and_never_the_last_one(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("甲。", encoding="utf-8")
    (tmp_path / "a.txt.en.jsonl").write_text('{"original": "甲。", "rendering": "A."}\n', encoding="utf-8")
    (tmp_path / "b.txt").write_text("乙。", encoding="utf-8")
    with pytest.raises(InputError, match=r"No document '\.\./b\.txt'"):
        uploads.remove(tmp_path, "../b.txt", ["a.txt", "b.txt"])
    uploads.remove(tmp_path, "a.txt", ["a.txt", "b.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]
    with pytest.raises(InputError, match="only document"):
        uploads.remove(tmp_path, "b.txt", ["b.txt"])


def test_uploading_is_off_without_a_login_unless_asked_for() -> None:
    assert not Settings.from_env({}).uploads_on
    assert Settings.from_env({"RAG_AUTH": "ann:secret"}).uploads_on
    assert Settings.from_env({"RAG_UPLOADS": "1"}).uploads_on
    assert not Settings.from_env({"RAG_AUTH": "ann:secret", "RAG_UPLOADS": "0"}).uploads_on
    with pytest.raises(InputError, match="RAG_UPLOADS"):
        Settings.from_env({"RAG_UPLOADS": "yes"})


def test_the_page_describes_the_seeds(tmp_path: Path) -> None:
    shipped = load_about(SEED.parent, [SEED.name], {})
    assert "Mrinank Sharma" in shipped.title and "why did he leave?" in shipped.examples
    assert load_about(tmp_path, ["report.pdf"], {"report.pdf": "Harbour Survey"}).title == "Ask Harbour Survey"
    assert load_about(tmp_path, ["a.md", "b.md"], {}).examples == ()
    (tmp_path / "chat.toml").write_text("examples = 3\n", encoding="utf-8")
    with pytest.raises(Exception, match="examples must be a list"):
        load_about(tmp_path, ["a.md"], {})


def test_a_background_build_adds_the_document_while_the_old_index_answers(tmp_path: Path, pipeline) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for p in SEED.parent.glob(f"{SEED.name}*"):
        shutil.copy(p, seeds)
    settings = make_settings(tmp_path, seeds_dir=seeds)
    mine = Pipeline(settings, pipeline.embedder, pipeline.index)
    rebuilder = uploads.rebuilder_for(mine, settings)
    uploads.save(seeds, "report.pdf", PDF, settings.upload_max_mb)
    rebuilder.start("added report.pdf")
    assert rebuilder.busy and "keep answering" in rebuilder.status
    during = mine.ask("why did he leave?")  # answered from the old index meanwhile
    assert not during.abstained and during.citations[0].source == SEED.name
    assert rebuilder.wait(300), "the build did not finish"
    assert rebuilder.status.startswith("Indexed in") and "2 documents" in rebuilder.status
    assert mine.sources() == ["mrinank-sharma-letter.zh.txt", "report.pdf"]
    answer = mine.ask("Who rebuilt the pier?")
    assert not answer.abstained and answer.citations[0].source == "report.pdf" and answer.citations[0].page == 3


def test_a_failed_build_says_so_and_a_change_during_a_build_builds_again() -> None:
    from threading import Event

    from rag.errors import SeedsError

    release, calls = Event(), []

    def build() -> str:
        calls.append(1)
        release.wait(10)
        if len(calls) == 1:
            raise SeedsError("seeds/x.pdf: cannot read.")
        return "2 documents"

    rebuilder = uploads.Rebuilder(build)
    rebuilder.start("added x.pdf")
    rebuilder.start("added y.pdf")  # while the first runs: queued, not lost
    release.set()
    assert rebuilder.wait(10) and len(calls) == 2
    assert rebuilder.status.startswith("Indexed in") and rebuilder.done_builds == 2
    release.clear()
    rebuilder = uploads.Rebuilder(lambda: (_ for _ in ()).throw(SeedsError("seeds/x.pdf: cannot read.")))
    rebuilder.start("added x.pdf")
    assert rebuilder.wait(10)
    assert rebuilder.status == "Indexing failed: seeds/x.pdf: cannot read. The previous index keeps answering."
