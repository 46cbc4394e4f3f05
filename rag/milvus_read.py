"""Reading the serving generation of the Milvus store (see rag.milvus): its manifest and
records, and the searches and sentence vectors a question asks of it."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import IndexCorrupt, IndexMissing, IndexStale, StoreUnavailable
from .records import Chunk, Sentence
from .search import Where, ranked
from .store import HNSW_EF_SEARCH, IndexData, as_stored, read_small_files

BATCH = 1000  # rows per insert or fetch
STORE_VERSION = 2  # of the collections' layout, beside the index format (rag.manifest.VERSION); 2: RECORDS
RECORDS = "records.json.gz"  # the chunk and sentence records, as a load reads them (the collections hold them too)
META_FIELDS = ("key", "name", "part", "data", "vec")  # of a meta collection (rag.milvus_write)


@contextmanager
def engine(doing: str) -> Iterator[None]:
    """A failing Milvus call (the server gone, a timeout) as StoreUnavailable, in words."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as e:
        raise StoreUnavailable(f"Milvus failed while {doing}: {getattr(e, 'message', e)}") from None


# Seconds a build's or a load's call may take: flushing, indexing or reading a large collection
# takes minutes. Connecting and a question's calls keep RAG_MILVUS_TIMEOUT_S: an answer must not hang.
LONG = 3600.0
CACHE_ROWS = 20_000  # sentence view vectors kept in memory (about 60 MB at 4 views of 384)


def _meta_blobs(client, meta: str, names: list[str]) -> dict[str, bytes]:
    """The files `names` of a meta collection, each joined from its parts (read a window
    of parts at a time: a query returns at most 16,384 rows); a file it lacks is left out."""
    out = {}
    for name in names:
        parts: list[tuple[int, str]] = []
        while True:
            where = f"name == {json.dumps(name)} and part >= {len(parts)} and part < {len(parts) + 4096}"
            rows = client.query(meta, filter=where, output_fields=["part", "data"], limit=4096, timeout=LONG)
            parts += sorted((int(r["part"]), r["data"]) for r in rows)
            if len(rows) < 4096:
                break
        if parts:
            out[name] = base64.b64decode("".join(p for _, p in parts))
    return out


def read_manifest(client, alias: str) -> tuple[dict, str]:
    """The serving generation's manifest and meta collection; IndexMissing without one."""
    from .manifest import check_manifest

    if alias not in client.list_aliases().get("aliases", []):
        raise IndexMissing(f"No index in Milvus under the alias {alias!r}.")
    meta = client.describe_alias(alias)["collection_name"]
    if {f["name"] for f in client.describe_collection(meta)["fields"]} != set(META_FIELDS):
        raise IndexStale(f"Milvus collection {meta} has an older store layout, this program reads {STORE_VERSION}.")
    client.load_collection(meta, timeout=LONG)
    blob = _meta_blobs(client, meta, ["manifest.json"]).get("manifest.json")
    if blob is None:
        raise IndexCorrupt(f"The Milvus collection {meta} has no manifest.")
    try:
        manifest = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexCorrupt(f"The manifest in {meta} is not valid JSON ({e}).") from None
    manifest = check_manifest(manifest, f"Milvus collection {meta}")
    store = manifest.get("store")
    if not isinstance(store, dict) or store.get("version") != STORE_VERSION:
        found = store.get("version") if isinstance(store, dict) else None
        raise IndexStale(f"Milvus collection {meta} has store layout {found}, this program reads {STORE_VERSION}.")
    return manifest, meta


def load(client, alias: str, uri: str) -> IndexData:
    """The serving generation, verified (freshness is checked by the caller)."""
    manifest, meta = read_manifest(client, alias)
    try:
        return _load(client, manifest, meta, uri)
    except (KeyError, TypeError, ValueError) as e:
        raise IndexCorrupt(f"Milvus collection {meta}: cannot read the index ({type(e).__name__}: {e}).") from None


def _load(client, manifest: dict, meta: str, uri: str) -> IndexData:
    store = manifest["store"]
    gen = store["generation"]
    blobs = _meta_blobs(client, meta, list(manifest["files"]))
    for name, info in manifest.get("files", {}).items():
        data = blobs.get(name)
        if data is None or len(data) != info.get("bytes") or hashlib.sha256(data).hexdigest() != info.get("sha256"):
            raise IndexCorrupt(f"Milvus collection {meta}: {name} is missing or damaged (checksum mismatch).")
    for name in (f"{gen}_chunks", f"{gen}_sentences"):
        client.load_collection(name, timeout=LONG)
    records = json.loads(gzip.decompress(blobs[RECORDS]).decode("utf-8"))
    chunks = [Chunk(**r) for r in records["chunks"]]
    sentences = [Sentence(**r) for r in records["sentences"]]
    sentence_chunk = np.array(records["sentence_chunk"], dtype=np.int64)
    counts = manifest.get("counts", {})
    if (len(chunks), len(sentences)) != (counts.get("chunks"), counts.get("sentences")):
        raise IndexCorrupt(f"Milvus generation {gen} holds other counts than its manifest.")
    dim = int(manifest["model"]["dim"])
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in blobs.items():
            (Path(tmp) / name).write_bytes(data)
        small = read_small_files(Path(tmp), dim, len(sentences))
        terms = json.loads((Path(tmp) / "bm25-terms.json").read_text(encoding="utf-8"))
    search = MilvusSearch(client, gen, terms, bool(store.get("rendered")), bool(store.get("hnsw")))
    views = LazyViews(client, f"{gen}_sentences", (int(store["views"]), len(sentences), dim))
    return IndexData(
        Path(uri), manifest, chunks, sentences, sentence_chunk, None, views, None, small.lexicon,
        small.background, small.examples, small.cutter, None, search,
    )  # fmt: skip


class MilvusSearch:
    """`rag.search.ChunkSearch` over a generation's chunk collection."""

    def __init__(self, client, gen: str, terms: dict, rendered: bool, hnsw: bool = False) -> None:
        self._client, self.name, self._hnsw = client, f"{gen}_chunks", hnsw
        self.vocab = {t: i for i, t in enumerate(terms["terms"])}
        self.df = np.array(terms["df"], dtype=np.int64)
        self.n_docs = max(int(terms["n_docs"]), 1)
        self.size = int(terms["n_docs"])
        self.has_rendered = rendered
        self._vectors: OrderedDict[int, np.ndarray] = OrderedDict()

    def dense(
        self, vec: np.ndarray, k: int, where: Where | None = None, rendered: bool = False
    ) -> list[tuple[int, float]]:
        if k <= 0 or (rendered and not self.has_rendered):
            return []
        field = "rendered" if rendered else "dense"
        return self._search([np.asarray(vec, np.float32)], field, k, where)

    def lexical(self, terms: list[str], k: int, where: Where | None = None) -> list[int]:
        query = {self.vocab[t]: 1.0 for t in terms if t in self.vocab}
        if not query or k <= 0:
            return []
        # the placeholder weight of a termless chunk (`_sparse_rows`) is not a match
        return [i for i, score in self._search([query], "sparse", k, where) if score > 1e-20]

    def cosines(self, vec: np.ndarray, positions: list[int]) -> list[float]:
        missing = [int(p) for p in dict.fromkeys(positions) if int(p) not in self._vectors]
        if missing:
            with engine("reading chunk vectors"):
                rows = self._client.get(self.name, ids=missing, output_fields=["pos", "dense"])
            for row in rows:
                self._vectors[int(row["pos"])] = np.asarray(row["dense"], dtype=np.float32)
            while len(self._vectors) > CACHE_ROWS:
                self._vectors.popitem(last=False)
        return [float(self._vectors[int(p)] @ vec) for p in positions]

    def _search(self, data: list, field: str, k: int, where: Where | None) -> list[tuple[int, float]]:
        with engine("searching"):
            hits = self._client.search(
                self.name, data=data, anns_field=field, limit=min(k, 16_384), filter=_expr(where),
                search_params=self._params(field, k), output_fields=["pos"],
            )  # fmt: skip
        return ranked({int(h["pos"]): float(h["distance"]) for h in hits[0]}, k)

    def _params(self, field: str, k: int) -> dict:
        """How far an HNSW search looks: as the folder store's (rag.store.HNSW_EF_SEARCH)."""
        if self._hnsw and field != "sparse":
            return {"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, k)}}
        return {"metric_type": "IP"}


def _expr(where: Where | None) -> str:
    """A Milvus filter for `where`: its source, and its language as `langs` records it."""
    parts = []
    if where is not None and where.source:
        parts.append(f"source == {json.dumps(where.source, ensure_ascii=False)}")
    if where is not None and where.lang:
        match = f'langs like "%,{where.lang},%"'
        parts.append(f"not ({match})" if where.foreign else match)
    return " and ".join(parts)


class LazyViews:
    """A generation's sentence views as the retriever reads the folder store's
    (views, sentences, dim) array, fetched by row when a question reads them
    and kept in a bounded cache: `views[:, rows]`, `views[:n]` (the first n
    views) and `views[v][rows]` or `views[v][row]`."""

    def __init__(self, client, name: str, shape: tuple[int, int, int], first: int | None = None) -> None:
        self._client, self._name, self._shape, self._first = client, name, shape, first
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def shape(self) -> tuple[int, int, int]:
        views, n, dim = self._shape
        return (min(views, self._first or views), n, dim)

    def __getitem__(self, key):
        if isinstance(key, slice) and key.start is None and key.step is None:
            out = LazyViews(self._client, self._name, self._shape, key.stop)
            out._cache = self._cache  # one cache for every slice of the same views
            return out
        if isinstance(key, int):
            return _OneView(self, key)
        if isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None):
            return self.rows(key[1])[: self._first]
        raise TypeError(f"LazyViews cannot be indexed with {key!r}")

    def rows(self, rows, exact: bool = False) -> np.ndarray:
        """(views, len(rows), dim) for `rows` (sentence positions): as the folder store
        gives them back (float16 values, `rag.store.as_stored`), or `exact`ly as embedded."""
        wanted = [int(r) for r in np.atleast_1d(np.asarray(rows))]
        missing = [r for r in dict.fromkeys(wanted) if r not in self._cache]
        if missing:
            with engine("reading sentence vectors"):
                found = self._client.get(self._name, ids=missing, output_fields=["row", "views"])
            for row in found:
                vec = np.asarray(row["views"], dtype=np.float32)
                self._cache[int(row["row"])] = vec.reshape(self._shape[0], self._shape[2])
            while len(self._cache) > CACHE_ROWS:
                self._cache.popitem(last=False)
        if any(r not in self._cache for r in wanted):
            raise IndexCorrupt(f"The Milvus collection {self._name} lacks sentence rows the index lists.")
        empty = np.zeros((self._shape[0], 0, self._shape[2]), np.float32)
        out = np.stack([self._cache[r] for r in wanted], axis=1) if wanted else empty
        return out if exact else as_stored(out)


class _OneView:
    """One view of `LazyViews`: `[rows]` → (len(rows), dim), `[row]` → (dim,)."""

    def __init__(self, views: LazyViews, view: int) -> None:
        self._views, self._view = views, view
        self.shape = views.shape[1:]

    def __getitem__(self, rows):
        single = np.ndim(rows) == 0
        out = self._views.rows(rows)[self._view]
        return out[0] if single else out
