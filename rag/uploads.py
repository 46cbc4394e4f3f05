"""Documents added and removed from the browser: checked, saved into the seeds
folder, and indexed in the background while the old index keeps answering.

Owns what happens to an uploaded file before `rag.indexing` sees it. Its type
is read from its bytes, not trusted from its name (a PDF starts with `%PDF-`, a
.docx is a zip holding `word/document.xml`, text decodes), and must agree
with its suffix; it may not exceed `RAG_UPLOAD_MAX_MB`. Its name is reduced
to a plain file name inside the seeds folder (no path, no hidden or odd
characters); the same bytes already there are refused as a duplicate, and a
different file of the same name gets a numbered name. The file is written
whole or not at all. `Rebuilder` runs one build at a time in a thread; the
pipeline reloads the index when the build swaps it in (rag.pipeline.refresh).

>>> safe_name("../../etc/Report (final)?.PDF")
'Report-final.pdf'
>>> safe_name("..hidden.md"), safe_name("笔记.docx")
('hidden.md', '笔记.docx')
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, RagError
from .folders import write_atomic
from .formats import SUFFIXES, decode

if TYPE_CHECKING:
    from .config import Settings
    from .pipeline import Pipeline

_ODD = re.compile(r"[^\w.\-]+")  # \w is Unicode: 笔记 stays; spaces, slashes and the like go
NAME_MAX = 100


def safe_name(name: str) -> str:
    """A plain file name for `name`: its last path part, NFC, odd characters
    replaced by "-", no leading dots, the suffix in lower case."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _ODD.sub("-", stem).strip("-. ")[: NAME_MAX - len(suffix) - 1]
    return f"{stem or 'document'}.{suffix.lower()}" if suffix else stem or "document"


def kind_of(data: bytes) -> str:
    """What the bytes are: "pdf", "docx", "html", "text", or "" for anything else."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(BytesIO(data)) as z:
                return "docx" if "word/document.xml" in z.namelist() else ""
        except zipfile.BadZipFile:
            return ""
    if b"\x00" in data[:4096]:
        return ""
    head = data[:2048].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return "html" if (head.startswith(b"<") and b"<html" in head) or head.startswith(b"<!doctype html") else "text"


_SUFFIX_KINDS = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html", ".txt": "text", ".md": "text"}


def check(name: str, data: bytes, max_mb: float) -> str:
    """The safe name to save `data` under; InputError saying what is wrong with it."""
    target = safe_name(name)
    suffix = Path(target).suffix
    if suffix not in SUFFIXES:
        raise InputError(f"{target}: only {', '.join(SUFFIXES)} files can be added.")
    if len(data) > max_mb * 1024 * 1024:
        raise InputError(f"{target} is {len(data) / 1024 / 1024:.1f} MB; the limit is {max_mb:g} MB.")
    if not data:
        raise InputError(f"{target} is empty.")
    kind, expected = kind_of(data), _SUFFIX_KINDS[suffix]
    if kind != expected and not (expected == "text" and kind == "html"):
        found = f"a {kind.upper()} file" if kind else "not a document this program reads"
        raise InputError(f"{target} is named {suffix} but is {found}.")
    if kind == "text":
        decode(data, target)  # undecodable text fails here, with the file's name
    return target


@dataclass(frozen=True)
class Saved:
    path: Path
    renamed: bool  # another file already had the name


def save(seeds_dir: Path, name: str, data: bytes, max_mb: float) -> Saved:
    """Check the file and write it into the seeds folder; InputError if it cannot be added."""
    target = check(name, data, max_mb)
    seeds_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    for p in seeds_dir.iterdir():
        if p.is_file() and p.stat().st_size == len(data) and hashlib.sha256(p.read_bytes()).hexdigest() == digest:
            raise InputError(f"{target} is already in the documents, as {p.name}.")
    path, n = seeds_dir / target, 1
    while path.exists():
        n += 1
        path = seeds_dir / f"{Path(target).stem}-{n}{Path(target).suffix}"
    if path.resolve().parent != seeds_dir.resolve():
        raise InputError(f"{target}: not a name inside the documents folder.")
    write_atomic(path, data)  # its temporary file is hidden: never read as a seed
    return Saved(path, renamed=n > 1)


def remove(seeds_dir: Path, name: str, documents: list[str]) -> Path:
    """Delete one document of the seeds folder (and its renderings); InputError
    for a name that is not one of `documents`, or for the last document."""
    if name not in documents:
        raise InputError(f"No document {name!r}; the documents are: {', '.join(documents)}.")
    if len(documents) == 1:
        raise InputError("This is the only document; add another before removing it.")
    path = seeds_dir / name
    if path.resolve().parent != seeds_dir.resolve() and seeds_dir.resolve() not in path.resolve().parents:
        raise InputError(f"{name}: not a name inside the documents folder.")
    path.unlink()
    for renderings in seeds_dir.glob(f"{path.name}.*.jsonl"):
        renderings.unlink()
    return path


def read_upload(path: Path, max_mb: float) -> bytes:
    """An uploaded file's bytes, refusing an oversized one before reading it."""
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise InputError(f"{path.name} is {size / 1024 / 1024:.1f} MB; the limit is {max_mb:g} MB.")
    return path.read_bytes()


def rebuilder_for(pipeline: Pipeline, settings: Settings) -> Rebuilder:
    """A `Rebuilder` that builds the pipeline's index under the build lock, then has it reload."""
    from .indexing import build, build_lock_for

    def rebuild() -> str:
        with build_lock_for(settings):
            summary = build(settings, pipeline.embedder)
        pipeline.refresh()
        return summary.line().replace("\n  ", "; ")

    return Rebuilder(rebuild)


class Rebuilder:
    """One background index build at a time, and a line saying how it went."""

    def __init__(self, build) -> None:
        """`build()` rebuilds the index and returns its summary line."""
        self._build = build
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False
        self.status = ""
        self.done_builds = 0

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, why: str) -> None:
        """Build now, or right after the build under way (which may have missed the change)."""
        with self._lock:
            if self.busy:
                self._again = True
                return
            self.status = f"Indexing ({why}) … the current documents keep answering meanwhile."
            self._thread = threading.Thread(target=self._run, daemon=True, name="rag-rebuild")
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            try:
                line = self._build()
                self.status = f"Indexed in {time.perf_counter() - t0:.0f} s: {line}"
            except RagError as e:
                self.status = f"Indexing failed: {e} The previous index keeps answering."
            except Exception as e:  # a bug must not kill the app; the old index still serves
                self.status = f"Indexing failed ({type(e).__name__}: {e}). The previous index keeps answering."
            self.done_builds += 1
            with self._lock:
                if not self._again:
                    return
                self._again = False
