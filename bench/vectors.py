"""Vectors for scale runs, and dense search measured alone: latency, recall, 1M.

Owns three things:

- `derived`: many unit vectors made cheaply from a few real embeddings (each
  a random mix of two real ones plus a little Gaussian noise), so 100k chunks
  cost seconds instead of hours of embedding, while keeping the clustered,
  low-dimensional shape of real e5 vectors that HNSW's recall depends on;
- `dense_compare`: one-query-at-a-time search latency of a flat and an HNSW
  index over the same vectors, and recall@10 of HNSW against the exact answer;
- `million`: the search step alone over 1M vectors, random (the hardest case
  for HNSW: no structure at all) and derived; the HNSW build is bounded in time.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> v = derived(random_unit(10, 8, rng), 1000, rng)
>>> v.shape, bool(np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5))
((1000, 8), True)
>>> recall_at(np.array([[1, 2, 3]]), np.array([[3, 2, 9]]), 3)
0.667
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from rag.config import Settings
from rag.retrieval import pool_size

NOISE = 0.1  # norm of the noise added to a mix (mixes have norm ~0.9)
BLOCK = 1 << 16
EF_SWEEP = (16, 32, 64, 128, 256)
RETRIEVER_K = pool_size(Settings.retrieve_k)  # what Retriever._dense asks FAISS for


# FAISS's own default: one OpenMP thread per core. `rag.pipeline.Pipeline` sets
# one thread for the whole process, so a run that has built a pipeline must
# ask for the default explicitly to measure it.
ALL_CORES = os.cpu_count() or 1


@contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """FAISS searches and builds with `n` OpenMP threads inside the block; the
    count before it is restored however the block ends."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def random_unit(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, BLOCK):
        block = rng.standard_normal((min(BLOCK, n - i), dim), dtype=np.float32)
        out[i : i + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def derived(base: np.ndarray, n: int, rng: np.random.Generator, noise: float = NOISE) -> np.ndarray:
    """`n` unit vectors, each normalise(a·x + (1−a)·y + noise) for real rows x, y of `base`."""
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for i in range(0, n, BLOCK):
        m = min(BLOCK, n - i)
        a = rng.random((m, 1), dtype=np.float32)
        mix = a * base[rng.integers(0, len(base), m)] + (1 - a) * base[rng.integers(0, len(base), m)]
        mix += rng.standard_normal(mix.shape, dtype=np.float32) * (noise / np.sqrt(base.shape[1]))
        out[i : i + m] = mix / np.linalg.norm(mix, axis=1, keepdims=True)
    return out


def recall_at(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean share of the exact top-k that the approximate top-k holds."""
    hits = [len(set(f[:k].tolist()) & set(e[:k].tolist())) for f, e in zip(found, exact, strict=True)]
    return round(float(np.mean(hits)) / k, 3)


def search_ms(index, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    """One query per call, as the retriever searches; (milliseconds, ids)."""
    times, ids = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, found = index.search(q.reshape(1, -1), k)
        times.append((time.perf_counter() - t0) * 1000)
        ids.append(found[0])
    return times, np.array(ids)


def dense_compare(flat, hnsw, queries: np.ndarray) -> dict:
    """Flat vs HNSW on the same vectors: latency at the retriever's k, recall@10, an efSearch sweep."""
    from bench.measure import summary

    _, exact = flat.search(queries, 10)  # batched: exact ground truth
    flat_ms, _ = search_ms(flat, queries, RETRIEVER_K)
    hnsw_ms, found = search_ms(hnsw, queries, RETRIEVER_K)
    sweep = {}
    stored_ef = hnsw.hnsw.efSearch
    for ef in EF_SWEEP:
        hnsw.hnsw.efSearch = ef
        ms, ids = search_ms(hnsw, queries, 10)
        sweep[str(ef)] = {"recall@10": recall_at(ids, exact, 10), "p50_ms": summary(ms)["p50"]}
    hnsw.hnsw.efSearch = stored_ef
    return {
        "queries": len(queries),
        "flat_ms": summary(flat_ms),
        "hnsw_ms": summary(hnsw_ms),
        "hnsw_efSearch": stored_ef,
        "recall@10": recall_at(found, exact, 10),  # top 10 of the retriever's k=32 search
        "ef_sweep_k10": sweep,
    }


def bounded_hnsw(flat, budget_s: float, batch: int = 100_000) -> tuple[object, dict]:
    """The store's HNSW (`rag.store.new_dense_index`) over the flat index's vectors, added in
    batches; stops when the next batch would likely overrun `budget_s` (judged by the last
    batch; the first always runs). Returns (the index, or None when stopped; timings)."""
    import faiss

    from rag.store import HNSW_EF_CONSTRUCTION, HNSW_M, new_dense_index

    n, dim = flat.ntotal, flat.d
    xb = faiss.rev_swig_ptr(flat.get_xb(), n * dim).reshape(n, dim)  # a view: no second copy
    hnsw = new_dense_index(dim, hnsw=True)
    info = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "budget_s": round(budget_s)}
    t0 = time.perf_counter()
    last = 0.0  # seconds the previous batch took; inserts slow down as the graph grows
    for i in range(0, n, batch):
        spent = time.perf_counter() - t0
        if i and spent + 1.25 * last > budget_s:  # the next batch would likely end past the budget
            info.update(added=i, seconds=round(spent, 1), projected_s=round(spent + last * (n - i) / batch))
            return None, info
        hnsw.add(np.ascontiguousarray(xb[i : i + batch]))
        last = time.perf_counter() - t0 - spent
    info.update(added=n, seconds=round(time.perf_counter() - t0, 1))
    return hnsw, info


def million(kind: str, n: int, queries: np.ndarray, base: np.ndarray | None, budget_s: float) -> dict:
    """The dense search step alone over `n` vectors: "random" unit vectors, or "derived" from
    real embeddings (then `queries` are real query embeddings). Flat always; HNSW within the budget."""
    import faiss

    from bench.measure import summary

    rng = np.random.default_rng(n)
    t0 = time.perf_counter()
    dim = queries.shape[1]
    data = random_unit(n, dim, rng) if kind == "random" else derived(base, n, rng)
    flat = faiss.IndexFlatIP(dim)
    flat.add(data)
    del data  # the flat index holds its own copy
    out: dict = {"kind": kind, "vectors": n, "dim": dim, "queries": len(queries)}
    out["generate_s"] = round(time.perf_counter() - t0, 1)
    with faiss_threads(1):
        out["flat_ms_1_thread"] = summary(search_ms(flat, queries, RETRIEVER_K)[0])
    with faiss_threads(ALL_CORES):
        hnsw, build = bounded_hnsw(flat, budget_s)
        # dense_compare times the flat search too; time it alone only when there is no HNSW to compare
        compared = dense_compare(flat, hnsw, queries) if hnsw is not None else {}
        flat_ms = compared.pop("flat_ms") if compared else summary(search_ms(flat, queries, RETRIEVER_K)[0])
    out.update(flat_ms=flat_ms, hnsw_build=build)
    out.update({k: v for k, v in compared.items() if k != "queries"})
    return out
