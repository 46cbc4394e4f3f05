"""Seeds loading: read the documents in `seeds/` into paragraphs with offsets.

A document is a `.txt`/`.md`, `.pdf`, `.docx` or `.html` file, reduced to
text by `rag.formats`. Each non-blank line of that text is a paragraph,
except section headings: Markdown `#` lines, or short lines that do not end
in sentence punctuation (the letter's four headings look like
`“多重危机”之下的冲突`). One file that cannot be read is reported by name and
left out; the others are still read (`read_seeds`). Paragraphs are numbered from 1 within their section and
keep their character offsets, so ``doc.text[p.start:p.end] == p.text``.

>>> doc = parse_document("a.txt", "导语。\\n小标题\\n正文一。\\n正文二。\\n")
>>> [(p.section, p.paragraph, p.text) for p in doc.paragraphs]
[('', 1, '导语。'), ('小标题', 1, '正文一。'), ('小标题', 2, '正文二。')]
"""

from __future__ import annotations

import bisect
import hashlib
import re
from pathlib import Path

from .errors import SeedsError
from .formats import SUFFIXES, Reduced, reduce
from .page import CHAT_FILE
from .records import Document, Paragraph
from .renderings import is_renderings_file

HEADING_MAX_CHARS = 40
# A line ending in one of these (after closing quotes) is prose, not a heading.
_PROSE_END = set("。！？；：，、…!?;:,.)）")
_CLOSERS = "”’」』\"'》】"
_LINE = re.compile(r"[^\n]+")


def is_heading(line: str) -> bool:
    """Heuristic: Markdown heading, or a short line without closing punctuation."""
    s = line.strip()
    if s.startswith("#"):
        return True
    core = s.rstrip(_CLOSERS)
    return bool(core) and len(s) <= HEADING_MAX_CHARS and core[-1] not in _PROSE_END and s == core


def parse_document(source: str, text: str, reduced: Reduced | None = None, sha256: str = "") -> Document:
    """Split decoded text into paragraphs, tracking sections and offsets.

    A section is the path of Markdown headings above the paragraph ("Guide ›
    Setup"); a heading without `#` starts a section of its own. With a PDF's
    page starts (`reduced`), each paragraph knows its 1-based page. `sha256`:
    of the file the text came from (default: of the text).
    """
    path: list[tuple[int, str]] = []
    number, paragraphs = 0, []
    starts = reduced.page_starts if reduced else ()
    for m in _LINE.finditer(text):
        raw = m.group()
        stripped = raw.strip()
        if not stripped:
            continue
        start = m.start() + (len(raw) - len(raw.lstrip()))
        end = start + len(stripped)
        if is_heading(stripped):
            level = len(stripped) - len(stripped.lstrip("#")) or 1
            path = [*(h for h in path if h[0] < level), (level, stripped.lstrip("#").strip())]
            number = 0
            continue
        number += 1
        section = " › ".join(h for _, h in path)
        page = bisect.bisect_right(starts, start) if starts else None
        paragraphs.append(Paragraph(source, section, number, start, end, stripped, page))
    sha = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    title = reduced.title if reduced else ""
    return Document(source=source, text=text, sha256=sha, paragraphs=tuple(paragraphs), title=title)


def seed_files(seeds_dir: Path) -> list[Path]:
    """The documents of the seeds folder (hidden files and renderings aside),
    sorted; SeedsError when there are none."""
    files = [p for p in _files(seeds_dir) if not is_renderings_file(p)]
    if not files:
        raise SeedsError(f"Seeds folder {seeds_dir} holds no documents ({', '.join(SUFFIXES)}).")
    return files


def _files(seeds_dir: Path) -> list[Path]:
    if not seeds_dir.is_dir():
        raise SeedsError(f"Seeds folder {seeds_dir} does not exist.")
    return sorted(
        p
        for p in seeds_dir.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.relative_to(seeds_dir).as_posix() != CHAT_FILE
    )


def read_seed(path: Path, seeds_dir: Path) -> Document:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SeedsError(f"{path}: cannot read ({e.strerror}).") from None
    reduced = reduce(path, data)
    sha = hashlib.sha256(data).hexdigest()  # of the file, as seed_hashes has it
    doc = parse_document(path.relative_to(seeds_dir).as_posix(), reduced.text, reduced, sha)
    if not doc.paragraphs:
        raise SeedsError(f"{path}: holds no paragraphs of text.")
    return doc


def read_seeds(seeds_dir: Path) -> tuple[list[Document], list[str]]:
    """The documents that could be read, and why each other file could not:
    one bad file never keeps the others out. SeedsError when none could be read."""
    docs, problems = [], []
    for path in seed_files(seeds_dir):
        try:
            docs.append(read_seed(path, seeds_dir))
        except SeedsError as e:
            problems.append(str(e))
    if not docs:
        hint = "Convert the files to text, PDF, Word or HTML, or move them out of the seeds folder."
        raise SeedsError("; ".join(problems) if problems else f"No documents in {seeds_dir}.", hint=hint)
    return docs, problems


def load_seeds(seeds_dir: Path) -> list[Document]:
    """Every readable document in the seeds folder, in a stable order."""
    return read_seeds(seeds_dir)[0]


def seed_hashes(seeds_dir: Path) -> dict[str, str]:
    """sha256 of each file's bytes, renderings included, for staleness checks without parsing."""
    files = _files(seeds_dir)
    if all(is_renderings_file(p) for p in files):  # the same error as a build when there is no document
        seed_files(seeds_dir)
    return {p.relative_to(seeds_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
