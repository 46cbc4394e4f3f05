"""Document formats: reduce a seed file to plain text, keeping what a citation needs.

Owns reading bytes into text. `.txt`/`.md` are decoded (UTF-8, with or without
a BOM; GBK when that is what the bytes are; Windows line endings become
"\\n"); `.pdf` (pypdf: its text layer, page by page), `.docx` (python-docx:
paragraphs, headings as Markdown `#` lines) and `.html`/`.htm` (trafilatura:
the page's main text without menus and footers, headings as `#` lines) are
reduced to text in the same shape, which `rag.seeds` splits into sections and
paragraphs. Offsets in citations are offsets into this reduced text; a PDF
also gives where each page starts in it, so a citation can name its page.

>>> decode(b"\\xef\\xbb\\xbfa\\r\\nb", "x.txt")
'a\\nb'
>>> decode("灯塔".encode("gbk"), "x.txt")
'灯塔'
>>> reflow(["A heading", "a long line that goes on and on without a stop at", "its end."])
'A heading\\na long line that goes on and on without a stop at its end.'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SeedsError

TEXT_SUFFIXES = (".txt", ".md")
SUFFIXES = (*TEXT_SUFFIXES, ".pdf", ".docx", ".html", ".htm")
# A line at least this long that does not end a sentence runs on in the next
# line (a PDF breaks lines where the page ends them); shorter ones are headings.
RUN_ON_CHARS = 40
_SENTENCE_END = tuple("。！？；：.!?;:\"'”’」』)）")
_CJK_EDGE = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class Reduced:
    text: str
    title: str = ""  # the document's own title, where the format has one
    page_starts: tuple[int, ...] = ()  # offset in `text` where each page begins (PDF)


def reduce(path: Path, data: bytes) -> Reduced:
    """The file's text in the shape `rag.seeds.parse_document` reads; SeedsError naming the file otherwise."""
    suffix = path.suffix.lower()
    try:
        if suffix in TEXT_SUFFIXES:
            return Reduced(decode(data, path.name))
        if suffix == ".pdf":
            return _pdf(data, path.name)
        if suffix == ".docx":
            return _docx(data)
        if suffix in (".html", ".htm"):
            return _html(data, path.name)
    except SeedsError:
        raise
    except Exception as e:  # each library has its own errors for a broken file
        raise SeedsError(f"{path.name}: cannot be read as {suffix[1:].upper()} ({type(e).__name__}: {e}).") from None
    raise SeedsError(f"{path.name}: cannot read this file type (only {', '.join(SUFFIXES)}).")


def decode(data: bytes, name: str) -> str:
    """UTF-8 (a BOM is dropped), else GBK; line endings become "\\n"."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SeedsError(f"{name}: neither UTF-8 nor GBK text; save it as UTF-8.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def reflow(lines: list[str]) -> str:
    """Join the lines of one page back into paragraphs (see RUN_ON_CHARS)."""
    out: list[str] = []
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        prev = out[-1] if out else ""
        if len(prev) >= RUN_ON_CHARS and not prev.endswith(_SENTENCE_END):
            glue = "" if _CJK_EDGE.match(prev[-1]) and _CJK_EDGE.match(line[0]) else " "
            out[-1] = prev + glue + line
        else:
            out.append(line)
    return "\n".join(out)


def _pdf(data: bytes, name: str) -> Reduced:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    parts, starts, at = [], [], 0
    for page in reader.pages:
        text = reflow((page.extract_text() or "").splitlines())
        starts.append(at)
        parts.append(text)
        at += len(text) + 2
    if not any(p.strip() for p in parts):
        raise SeedsError(
            f"{name}: has no text layer (a scanned PDF?); run it through OCR first, e.g. ocrmypdf, then add it again."
        )
    title = (reader.metadata.title or "") if reader.metadata else ""
    return Reduced("\n\n".join(parts), str(title).strip(), tuple(starts))


def _docx(data: bytes) -> Reduced:
    import io

    import docx

    document = docx.Document(io.BytesIO(data))
    lines = []
    for p in document.paragraphs:
        text, style = p.text.strip(), (p.style.name if p.style is not None else "") or ""
        if not text:
            continue
        level = 1 if style == "Title" else int(m.group(1)) if (m := re.match(r"Heading (\d)", style)) else 0
        lines.append("#" * level + " " + text if level else text)
    return Reduced("\n".join(lines), (document.core_properties.title or "").strip())


def _html(data: bytes, name: str) -> Reduced:
    import trafilatura

    html = decode(data, name)
    text = trafilatura.extract(html, output_format="markdown", include_comments=False, favor_precision=True)
    if not text or not text.strip():
        raise SeedsError(f"{name}: no main text found in this page.")
    meta = trafilatura.extract_metadata(html)
    return Reduced(text, (meta.title or "").strip() if meta else "")
