"""Folders replaced atomically: the index and the materialised model share this.

A writer builds a complete folder beside its target (`temp_folder`), then, while
holding the lock beside the target (`folder_lock`), renames the old folder aside
and the new one into place (`swap_in`). Readers may take the lock shared, so
they never see half of each. `sha256_file` checksums what was written.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> new = temp_folder(root / "index"); new.mkdir(); _ = (new / "a.txt").write_text("v2")
>>> with folder_lock(root / "index"):
...     swap_in(new, root / "index")
>>> (root / "index" / "a.txt").read_text(), sorted(p.name for p in root.iterdir())
('v2', ['.index.lock', 'index'])
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def folder_lock(target: Path, shared: bool = False) -> Iterator[None]:
    """The lock file `.NAME.lock` beside `target`: exclusive for writers, shared for readers."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file whole or not at all: a reader never sees half of it. The
    temporary file beside it is hidden (`.NAME.…tmp`), so a folder scan, such
    as the seeds', never takes it for a document, and it is removed on failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prefix(target: Path, hidden: bool) -> str:
    return f".{target.name}." if hidden else f"{target.name}."


def temp_folder(target: Path, hidden: bool = False) -> Path:
    """A fresh name beside `target` for building its replacement (not created)."""
    return target.parent / f"{_prefix(target, hidden)}tmp-{os.getpid()}-{time.time_ns()}"


def swap_in(tmp: Path, target: Path, hidden: bool = False) -> None:
    """Replace `target` by `tmp` (hold `folder_lock(target)`): two renames, then cleanup."""
    old = target.parent / f"{_prefix(target, hidden)}old-{os.getpid()}-{time.time_ns()}"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
