"""Builds spread by Ray (rag.distributed): a real local Ray with two workers, the real model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from rag import vectorcache
from rag.config import REPO
from rag.distributed import RayEmbedder
from rag.indexing import build
from rag.store import read_manifest
from tests.conftest import rag_env


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the optional Ray group: pip install -r requirements-ray.txt")
    yield ray
    ray.shutdown()


def test_a_two_worker_build_writes_the_plain_builds_vectors_byte_for_byte(ray_local, pipeline, tmp_path) -> None:
    """`build` with RayEmbedder(workers=2) against the folder index the plain build wrote
    (the `pipeline` fixture's), with no passage vector cached: Ray embeds every passage."""
    cache = tmp_path / "cache"
    shutil.copytree(pipeline.settings.model_cache / "vectors", cache / "vectors")
    for path in vectorcache._paths(cache, vectorcache.passage_key(pipeline.embedder)):
        path.unlink(missing_ok=True)
    s = replace(pipeline.settings, index_dir=tmp_path / "index", model_cache=cache)
    spread = RayEmbedder(pipeline.embedder, s, workers=2)
    summary = build(s, spread)
    assert summary.reused_passages == 0 and ray_local.cluster_resources().get("CPU") == 2
    for name in ("dense.faiss", "dense-rendered.faiss", "sentences.npy"):
        assert (s.index_dir / name).read_bytes() == (pipeline.settings.index_dir / name).read_bytes(), name
    # the same cache keys and manifest backend as the embedder alone
    assert vectorcache.model_key(spread) == vectorcache.model_key(pipeline.embedder)
    assert read_manifest(s.index_dir)["model"] == pipeline.index.manifest["model"]


def test_without_ray_installed_the_flag_says_what_to_install(settings) -> None:
    run = "import sys; sys.modules['ray'] = None\nfrom rag.cli import main\nsys.exit(main(['build', '--workers', '2']))"
    done = subprocess.run(
        [sys.executable, "-c", run], cwd=REPO, env=rag_env(settings.index_dir), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 1 and "Ray is not installed" in done.stderr and "Traceback" not in done.stderr
