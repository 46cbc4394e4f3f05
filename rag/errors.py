"""Errors the library raises; the CLI and the UI turn each into plain words.

Every error carries a message meant for a person, and `hint` says what to do.

>>> str(IndexCorrupt("index/chunks.json: checksum mismatch"))
'index/chunks.json: checksum mismatch'
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: anything the library reports on purpose."""

    exit_code = 1
    hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class InputError(RagError):
    """The question or a file the user named cannot be used (CLI exit 2)."""

    exit_code = 2


class SeedsError(RagError):
    """The seeds folder is empty, or a file in it cannot be read."""

    hint = "Put UTF-8 .txt or .md files in the seeds folder (RAG_SEEDS_DIR)."


class ModelError(RagError):
    """The embedding model cannot be loaded or materialised."""

    hint = "Set RAG_EMBED_MODEL to a local sentence-transformers folder, or unset it for the bundled model."


class IndexError_(RagError):
    """Base for index problems (named with a trailing _ to avoid the builtin)."""

    hint = "Rebuild it with: python -m rag build"


class IndexMissing(IndexError_):
    """No index has been built yet."""


class IndexStale(IndexError_):
    """The index was built from other seeds, another model or other settings."""


class IndexCorrupt(IndexError_):
    """Index files are missing, truncated, edited, or of an unknown format."""


class StoreUnavailable(RagError):
    """The index's store (a Milvus server, rag.milvus) cannot be reached."""


class LLMError(RagError):
    """The optional generating model failed; callers fall back to extraction."""
