"""Builds spread by Ray (rag.distributed): a real local Ray with two workers, the real model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rag.chunking import chunk_documents, sentence_views
from rag.config import REPO
from rag.distributed import RayEmbedder
from rag.seeds import read_seeds
from rag.vectorcache import model_key
from tests.conftest import rag_env


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the optional Ray group: pip install -r requirements-ray.txt")
    yield ray
    ray.shutdown()


def test_two_local_workers_give_the_plain_builds_vectors_byte_for_byte(ray_local, pipeline) -> None:
    docs, _ = read_seeds(pipeline.settings.seeds_dir)
    chunks, sentences = chunk_documents(docs, pipeline.settings.chunk_size, pipeline.settings.chunk_min)
    texts = [c.embed_text() for c in chunks] + [t for view in sentence_views(sentences) for t in view]
    spread = RayEmbedder(pipeline.embedder, pipeline.settings, workers=2)
    vecs = spread.embed_passages(texts)
    assert vecs.shape == (len(texts), pipeline.embedder.dim) and len(texts) > 2 * 64  # more than one batch each
    assert vecs.tobytes() == pipeline.embedder.embed_passages(texts).tobytes()
    used = ray_local.cluster_resources()
    assert used.get("CPU") == 2
    # the same cache keys and manifest backend as the embedder alone
    assert model_key(spread) == model_key(pipeline.embedder)
    np.testing.assert_array_equal(spread.embed_queries(["why?"]), pipeline.embedder.embed_queries(["why?"]))


def test_without_ray_installed_the_flag_says_what_to_install(settings) -> None:
    run = "import sys; sys.modules['ray'] = None\nfrom rag.cli import main\nsys.exit(main(['build', '--workers', '2']))"
    done = subprocess.run(
        [sys.executable, "-c", run], cwd=REPO, env=rag_env(settings.index_dir), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 1 and "Ray is not installed" in done.stderr and "Traceback" not in done.stderr
