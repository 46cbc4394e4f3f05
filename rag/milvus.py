"""Index store on Milvus (`RAG_STORE=milvus`): Milvus Lite in a local file, or a cluster by URI.

`RAG_MILVUS_URI` is a file path (Milvus Lite, embedded: nothing to start) or
`http(s)://host:19530` (Milvus standalone or distributed, with
`RAG_MILVUS_TOKEN`); the code is the same. One build is a *generation* of
three collections, named `<alias>_<time>_…`:

- `…_chunks`: per chunk its position, dense vector (and the vector of its
  rendering, when the seeds have renderings), BM25 weights as a sparse vector
  (the same jieba/Snowball terms and scores as the folder's `bm25s` index, so
  a sparse inner product with the question's terms is its BM25 score), source,
  languages and the chunk record;
- `…_sentences`: per sentence its chunk, its embedded views (one vector of
  views × dimension, as embedded; read as the folder store keeps them) and the record;
- `…_meta`: the manifest and the small files every store keeps
  (`rag.store.write_small_files`), the BM25 terms' document counts, and the
  chunk and sentence records once more as one gzip file, which a load reads
  in seconds where reading the collections row by row took minutes at 100k
  chunks. Files are kept as base64 parts of one row each.

The alias `<alias>` names the meta collection of the generation that serves.
A build writes a new generation and then moves the alias, so a reader never
sees a half-built index and an interrupted build leaves the old one serving;
generations older than the one replaced are dropped by the next build.

The serving process keeps the chunk and sentence records, the lexicon and the
term counts; the vectors stay in Milvus and are fetched per question for the
candidate chunks (`LazyViews`).
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path

import numpy as np

from .config import Settings
from .errors import StoreUnavailable
from .milvus_read import BATCH, engine, load, read_manifest
from .milvus_write import write
from .store import IndexData

__all__ = [
    "client_for", "close", "engine", "load", "milvus_uri", "open_fresh", "passage_vectors", "read_manifest", "stamp",
    "write",
]  # fmt: skip


_CLIENTS: dict[tuple[str, str], object] = {}


def client_for(settings: Settings):
    """One client per URI and token in a process: Milvus Lite opens its file once."""
    key = (milvus_uri(settings), settings.milvus_token)
    if key not in _CLIENTS:
        _CLIENTS[key] = connect(settings)
    return _CLIENTS[key]


def open_fresh(settings: Settings, seeds: dict[str, str], family: str, fingerprint: str) -> IndexData:
    """The serving generation if it was built from these inputs (rag.manifest.check_fresh), loaded."""
    from .manifest import check_fresh

    client = client_for(settings)
    with engine("opening the index"):
        manifest, _ = read_manifest(client, settings.milvus_alias)
        check_fresh(manifest, settings, seeds, family, fingerprint)
        return load(client, settings.milvus_alias, milvus_uri(settings))


def passage_vectors(settings: Settings, index: IndexData, backend: str) -> dict[str, np.ndarray]:
    """The passage vectors by text (chunks and sentence views) of `index`, a generation in
    the store `settings` names, when it was built by `backend` (rag.vectorcache.model_key):
    a rebuild after adding or removing one document embeds only what is new, however
    large the rest (the model cache keeps only the newest texts)."""
    from .chunking import chunk_renderings, sentence_views

    if index.manifest.get("model", {}).get("backend") != backend:
        return {}
    known: dict[str, np.ndarray] = {}
    views = sentence_views(index.sentences)
    for start in range(0, len(index.sentences), BATCH):
        rows = list(range(start, min(start + BATCH, len(index.sentences))))
        for v, vecs in enumerate(index.sentence_views.rows(rows, exact=True)):
            known.update(zip((views[v][r] for r in rows), vecs, strict=True))
    rendered = chunk_renderings(index.chunks, index.sentences) if index.search.has_rendered else []
    fields = ["pos", "dense", *(["rendered"] if rendered else [])]
    for start in range(0, len(index.chunks), BATCH):
        ids = list(range(start, min(start + BATCH, len(index.chunks))))
        with engine("reading chunk vectors"):
            found = client_for(settings).get(index.search.name, ids=ids, output_fields=fields)
        for row in found:
            pos = int(row["pos"])
            known[index.chunks[pos].embed_text()] = np.asarray(row["dense"], dtype=np.float32)
            if rendered and rendered[pos]:
                known[rendered[pos]] = np.asarray(row["rendered"], dtype=np.float32)
    return known


def stamp(settings: Settings) -> str | None:
    """Which generation serves now (None when none can be read): a change means a new build landed."""
    try:
        client = client_for(settings)
        return client.describe_alias(settings.milvus_alias)["collection_name"]
    except Exception:  # no alias yet, or the server is away: keep what is loaded
        return None


def close(settings: Settings) -> None:
    """Let go of the store: a Milvus Lite file is free for another process after this."""
    client = _CLIENTS.pop((milvus_uri(settings), settings.milvus_token), None)
    if client is not None:
        client.close()
    if "://" not in milvus_uri(settings):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(milvus_uri(settings))


def connect(settings: Settings):
    """A `MilvusClient` for `settings.milvus_uri`, or StoreUnavailable within the timeout."""
    from pymilvus import MilvusClient

    # pymilvus logs each failed call with its traceback; rag.milvus_read.engine says it in words instead
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    uri = milvus_uri(settings)
    if "://" not in uri:
        _check_unlocked(Path(uri))
    try:
        return MilvusClient(uri=uri, token=settings.milvus_token, timeout=settings.milvus_timeout_s)
    except Exception as e:  # pymilvus raises MilvusException, grpc errors, OSError …
        raise StoreUnavailable(f"Cannot reach Milvus at {uri} ({type(e).__name__}: {e}).") from None


def _check_unlocked(path: Path) -> None:
    """Milvus Lite opens its file in one process at a time (a lock in it); say so
    plainly, before pymilvus prints the engine's traceback from its thread."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "LOCK", "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreUnavailable(
                f"Milvus Lite at {path} is open in another process, and it serves one process at a time. "
                f"Stop that process, or share the index: `milvus-lite server --data-dir {path}` and "
                "RAG_MILVUS_URI=http://127.0.0.1:19530."
            ) from None
        fcntl.flock(f, fcntl.LOCK_UN)


def milvus_uri(settings: Settings) -> str:
    return settings.milvus_uri or str(settings.index_dir / "milvus.db")
