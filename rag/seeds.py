"""Seeds loading: read the documents in `seeds/` into paragraphs with offsets.

A document is a UTF-8 `.txt` or `.md` file. Each non-blank line is a
paragraph, except section headings: Markdown `#` lines, or short lines that do
not end in sentence punctuation (the letter's four headings look like
`“多重危机”之下的冲突`). Paragraphs are numbered from 1 within their section and
keep their character offsets, so ``doc.text[p.start:p.end] == p.text``.

>>> doc = parse_document("a.txt", "导语。\\n小标题\\n正文一。\\n正文二。\\n")
>>> [(p.section, p.paragraph, p.text) for p in doc.paragraphs]
[('', 1, '导语。'), ('小标题', 1, '正文一。'), ('小标题', 2, '正文二。')]
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import SeedsError
from .records import Document, Paragraph

SUFFIXES = (".txt", ".md")
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


def parse_document(source: str, text: str) -> Document:
    """Split decoded text into paragraphs, tracking sections and offsets."""
    section, number, paragraphs = "", 0, []
    for m in _LINE.finditer(text):
        raw = m.group()
        stripped = raw.strip()
        if not stripped:
            continue
        start = m.start() + (len(raw) - len(raw.lstrip()))
        end = start + len(stripped)
        if is_heading(stripped):
            section, number = stripped.lstrip("#").strip(), 0
            continue
        number += 1
        paragraphs.append(Paragraph(source, section, number, start, end, stripped))
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(source=source, text=text, sha256=sha, paragraphs=tuple(paragraphs))


def seed_files(seeds_dir: Path) -> list[Path]:
    """The readable seed files, sorted; raise SeedsError when there are none."""
    if not seeds_dir.is_dir():
        raise SeedsError(f"Seeds folder {seeds_dir} does not exist.")
    files = sorted(p for p in seeds_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    unknown = [p for p in files if p.suffix.lower() not in SUFFIXES]
    if unknown:
        raise SeedsError(
            f"{unknown[0]}: cannot read this file type (only {', '.join(SUFFIXES)}).",
            hint="Convert it to UTF-8 text or move it out of the seeds folder.",
        )
    if not files:
        raise SeedsError(f"Seeds folder {seeds_dir} holds no .txt or .md files.")
    return files


def read_seed(path: Path, seeds_dir: Path) -> Document:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SeedsError(f"{path}: cannot read ({e.strerror}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SeedsError(f"{path}: not UTF-8 text (bad byte at offset {e.start}).") from None
    text = text.removeprefix("\ufeff")
    doc = parse_document(path.relative_to(seeds_dir).as_posix(), text)
    if not doc.paragraphs:
        raise SeedsError(f"{path}: holds no paragraphs of text.")
    return doc


def load_seeds(seeds_dir: Path) -> list[Document]:
    """Every document in the seeds folder, in a stable order."""
    return [read_seed(p, seeds_dir) for p in seed_files(seeds_dir)]


def seed_hashes(seeds_dir: Path) -> dict[str, str]:
    """sha256 of each seed file's bytes, for staleness checks without parsing."""
    return {
        p.relative_to(seeds_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in seed_files(seeds_dir)
    }
