"""Writing a generation of the Milvus store (see rag.milvus): three collections, then the alias."""

from __future__ import annotations

import base64
import gzip
import json
import re
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .examples import ExampleBank
from .milvus_read import BATCH, LONG, RECORDS, STORE_VERSION
from .records import Chunk, Sentence
from .search import chunk_langs
from .store import HNSW_EF_CONSTRUCTION, HNSW_M, file_list, manifest_for, write_small_files
from .words import ChunkWords, bm25_index, chunk_words

PART = 60_000  # characters of base64 per meta row (a VARCHAR holds at most 65,535)


def write(
    client, alias: str, chunks: list[Chunk], sentences: list[Sentence], chunk_vecs: np.ndarray,
    sentence_vecs: np.ndarray, meta: dict, background_vecs: np.ndarray | None = None,
    examples: ExampleBank | None = None, words: ChunkWords | None = None, rendered_vecs: np.ndarray | None = None,
    hnsw_above: int = 50_000,
) -> str:  # fmt: skip
    """Write a new generation, then point `alias` at it; returns the generation's name. The
    chunk vectors get an HNSW index above `hnsw_above` chunks (as the folder store's), else exact search."""
    dim = chunk_vecs.shape[1]
    background_vecs = np.zeros((0, dim), np.float32) if background_vecs is None else background_vecs
    examples = examples or ExampleBank.empty(dim)
    words = words or chunk_words(chunks)
    gen = f"{alias}_{time.time_ns() // 1000}"
    ids = {c.id: i for i, c in enumerate(chunks)}
    sentence_chunk = np.array([ids[s.chunk_id] for s in sentences], dtype=np.int64)
    bm25 = bm25_index(words.tokens)
    langs = chunk_langs(sentences, sentence_chunk, len(chunks))
    hnsw = len(chunks) > hnsw_above
    write_chunks(client, gen, chunks, chunk_vecs, rendered_vecs, bm25, langs, hnsw)
    _write_sentences(client, gen, sentences, sentence_chunk, sentence_vecs)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_small_files(folder, background_vecs, examples, words)
        # the records once more, as one file: a load reads them in seconds, not row by row
        records = {"chunks": [asdict(c) for c in chunks], "sentences": [asdict(x) for x in sentences]}
        records["sentence_chunk"] = sentence_chunk.tolist()
        (folder / RECORDS).write_bytes(gzip.compress(json.dumps(records, ensure_ascii=False).encode("utf-8"), mtime=0))
        vocab = sorted(bm25.vocab_dict.items(), key=lambda kv: kv[1])
        terms = {"terms": [t for t, _ in vocab], "df": np.diff(bm25.scores["indptr"]).tolist()}
        (folder / "bm25-terms.json").write_text(json.dumps({**terms, "n_docs": int(bm25.scores["num_docs"])}))
        files = file_list(folder)
        manifest = manifest_for(meta, background_vecs, sentence_vecs, len(chunks), files)
        rendered = rendered_vecs is not None
        views = sentence_vecs.shape[0]
        layout = {"kind": "milvus", "version": STORE_VERSION, "generation": gen}
        manifest["store"] = {**layout, "rendered": rendered, "views": views, "hnsw": hnsw}
        blobs = {name: (folder / name).read_bytes() for name in files}
    _write_meta(client, gen, {**blobs, "manifest.json": json.dumps(manifest, ensure_ascii=False).encode("utf-8")})
    _switch(client, alias, gen)
    return gen


def _schema(client, fields: list[tuple]):
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    for name, kind, extra in fields:
        schema.add_field(name, getattr(DataType, kind), **extra)
    return schema


def _create(client, name: str, fields: list[tuple], vectors: dict[str, str], hnsw: bool = False) -> None:
    index = client.prepare_index_params()
    for field, kind in vectors.items():
        if kind == "sparse":
            index.add_index(field, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        elif hnsw:
            graph = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}
            index.add_index(field, index_type="HNSW", metric_type="IP", params=graph)
        else:
            index.add_index(field, index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=_schema(client, fields), timeout=LONG)
    # not waiting for each index (pymilvus polls every 0.5 s): loading waits for all of them
    client.create_index(name, index, sync=False, timeout=LONG)
    client.load_collection(name, timeout=LONG)


def _insert(client, name: str, rows) -> None:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            client.insert(name, batch, timeout=LONG)
            batch = []
    if batch:
        client.insert(name, batch, timeout=LONG)
    client.flush(name, timeout=LONG)


def write_chunks(client, gen, chunks, chunk_vecs, rendered_vecs, bm25, langs, hnsw: bool = False) -> None:
    """The chunk collection of generation `gen` (its searches: rag.milvus_read.MilvusSearch)."""
    dim = chunk_vecs.shape[1]
    fields = [
        ("pos", "INT64", {"is_primary": True}),
        ("dense", "FLOAT_VECTOR", {"dim": dim}),
        ("sparse", "SPARSE_FLOAT_VECTOR", {}),
        ("source", "VARCHAR", {"max_length": 4096}),
        ("langs", "VARCHAR", {"max_length": 64}),
        ("record", "JSON", {}),
    ]
    vectors = {"dense": "dense", "sparse": "sparse"}
    if rendered_vecs is not None:
        fields.insert(2, ("rendered", "FLOAT_VECTOR", {"dim": dim}))
        vectors["rendered"] = "dense"
    _create(client, f"{gen}_chunks", fields, vectors, hnsw)
    weights = _sparse_rows(bm25)

    def rows():
        for i, c in enumerate(chunks):
            row = {"pos": i, "dense": chunk_vecs[i].astype(np.float32), "sparse": weights[i], "source": c.source}
            row.update(langs="," + ",".join(sorted(langs[i])) + ",", record=asdict(c))
            if rendered_vecs is not None:
                row["rendered"] = rendered_vecs[i].astype(np.float32)
            yield row

    _insert(client, f"{gen}_chunks", rows())


def _sparse_rows(bm25) -> list[dict[int, float]]:
    """Each chunk's BM25 weight per term, from the `bm25s` index's term-major score matrix."""
    from scipy.sparse import csc_matrix

    s = bm25.scores
    n_docs, n_terms = int(s["num_docs"]), len(s["indptr"]) - 1
    by_doc = csc_matrix((s["data"], s["indices"], s["indptr"]), shape=(n_docs, n_terms)).tocsr()
    out = []
    for i in range(n_docs):
        lo, hi = by_doc.indptr[i], by_doc.indptr[i + 1]
        row = {int(t): float(w) for t, w in zip(by_doc.indices[lo:hi], by_doc.data[lo:hi], strict=True) if w > 0}
        out.append(row or {0: 1e-30})  # Milvus takes no empty sparse vector; this one never outranks a match
    return out


def _write_sentences(client, gen, sentences, sentence_chunk, sentence_vecs) -> None:
    views, _, dim = sentence_vecs.shape
    fields = [
        ("row", "INT64", {"is_primary": True}),
        ("chunk", "INT64", {}),
        ("views", "FLOAT_VECTOR", {"dim": views * dim}),
        ("record", "JSON", {}),
    ]
    _create(client, f"{gen}_sentences", fields, {"views": "dense"})
    # as embedded, so a rebuild can take them over unchanged (`passage_vectors`); a
    # question reads them as the folder store keeps them (`LazyViews.rows`)
    stored = np.ascontiguousarray(sentence_vecs.transpose(1, 0, 2).reshape(len(sentences), -1), dtype=np.float32)
    rows = (
        {"row": i, "chunk": int(sentence_chunk[i]), "views": stored[i], "record": asdict(s)}
        for i, s in enumerate(sentences)
    )
    _insert(client, f"{gen}_sentences", rows)


def _write_meta(client, gen: str, blobs: dict[str, bytes]) -> None:
    fields = [
        ("key", "VARCHAR", {"is_primary": True, "max_length": 256}),
        ("name", "VARCHAR", {"max_length": 240}),
        ("part", "INT64", {}),
        ("data", "VARCHAR", {"max_length": 65_535}),
        ("vec", "FLOAT_VECTOR", {"dim": 2}),  # Milvus wants a vector field in every collection
    ]
    _create(client, f"{gen}_meta", fields, {"vec": "dense"})

    def rows():
        for name, data in blobs.items():
            text = base64.b64encode(data).decode("ascii")
            parts = [text[i : i + PART] for i in range(0, len(text), PART)] or [""]
            for k, p in enumerate(parts):
                yield {"key": f"{name}#{k:06d}", "name": name, "part": k, "data": p, "vec": [0.0, 0.0]}

    _insert(client, f"{gen}_meta", rows())


def _switch(client, alias: str, gen: str) -> None:
    """Point `alias` at `gen`'s meta collection; drop generations older than the one it replaces."""
    aliases = client.list_aliases().get("aliases", [])
    previous = client.describe_alias(alias)["collection_name"] if alias in aliases else ""
    if previous:
        client.alter_alias(f"{gen}_meta", alias)
    else:
        client.create_alias(f"{gen}_meta", alias)
    keep = {gen, previous.removesuffix("_meta")}
    pattern = re.compile(rf"^{re.escape(alias)}_(\d+)_(chunks|sentences|meta)$")
    for name in client.list_collections():
        match = pattern.match(name)
        if match and f"{alias}_{match.group(1)}" not in keep:
            client.drop_collection(name)
