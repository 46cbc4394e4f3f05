"""Index store: build, write and verify the index folder (`index/`).

Files, none of them pickle:

- `manifest.json`: format version, embedding model family and fingerprint,
  dimension, chunker settings, sha256 of every seed file, build time, and the
  sha256 and size of every other file here;
- `chunks.json`: the chunks and their sentences (text and offsets);
- `dense.faiss`: chunk vectors (inner product on unit vectors; flat, or HNSW
  above `hnsw_above` chunks); `dense-rendered.faiss`, when the seeds have
  renderings: the same with each chunk read in the other language
  (`chunking.chunk_renderings`); `sentences.npy`: sentence vectors, one row
  of each per view (`chunking.sentence_views`);
- `bm25/`: the `bm25s` index, saved without pickle;
- `lexicon.json`: question words → corpus words of the other language (see `rag.lexicon`), and the
  part of jieba's dictionary the corpus holds, to cut questions with
  (`rag.lexical.corpus_dictionary`);
- `background.npy`: vectors of everyday questions, to tell an off-topic
  question (see `rag.offtopic`);
- `examples.json`, `examples.npy`: the worked examples, their sentence rows
  and query vectors (see `rag.examples`).

A build writes a temporary folder beside the index and renames it into place
under a lock, so an interrupted build leaves the previous index usable and two
builds at once leave one complete index.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import IndexCorrupt, IndexMissing
from .examples import ExampleBank
from .folders import folder_lock, sha256_file, swap_in, temp_folder
from .manifest import FORMAT, VERSION, check_manifest
from .records import Chunk, Sentence
from .words import ChunkWords, bm25_index, chunk_words

REQUIRED_FILES = (
    "chunks.json", "dense.faiss", "sentences.npy", "lexicon.json", "background.npy", "examples.json", "examples.npy"
)  # fmt: skip
# Vectors are stored as float16 (half the bytes; cosines move by < 0.001) and
# scored as float32. The chunk vectors stay float32 inside dense.faiss.
STORED = np.float16
HNSW_M = 32  # graph degree
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256  # stored in dense.faiss; recall@10 ≥ 0.97 at 100k chunks for < 1 ms (bench/README.md)


@dataclass(frozen=True)
class IndexData:
    """A loaded, verified index."""

    path: Path
    manifest: dict
    chunks: list[Chunk]
    sentences: list[Sentence]
    sentence_chunk: np.ndarray  # index of each sentence's chunk
    dense: object  # faiss.Index over chunk vectors
    sentence_views: np.ndarray  # (views, sentences, dim); see chunking.sentence_views
    bm25: object  # bm25s.BM25
    lexicon: dict  # English word → Chinese corpus words, Chinese word → English ones
    background: np.ndarray  # (questions, dim): everyday questions; see rag.offtopic
    examples: ExampleBank  # questions with known answer sentences; see rag.examples
    cutter: object  # jieba over the corpus's part of its dictionary (rag.lexical.query_cutter)
    dense_rendered: object = None  # faiss.Index over the chunks read in the other language, if any
    search: object = None  # the rag.search.ChunkSearch the retriever ranks chunks with


# The lock beside the index folder, held while it is replaced; readers take it
# shared, so a load never mixes files of the old and the new index.
build_lock = folder_lock


def write_index(
    index_dir: Path,
    chunks: list[Chunk],
    sentences: list[Sentence],
    chunk_vecs: np.ndarray,
    sentence_vecs: np.ndarray,
    meta: dict,
    hnsw_above: int,
    background_vecs: np.ndarray | None = None,
    examples: ExampleBank | None = None,
    words: ChunkWords | None = None,
    rendered_vecs: np.ndarray | None = None,
) -> Path:
    """Write every file to a temporary folder, then swap it into place.
    Without `background_vecs` the off-topic check has nothing to compare with,
    without `examples` no sentence gains from them; without `words` they are
    made from the chunks (`chunk_words`); `rendered_vecs` (the chunks read in
    the other language, `chunking.chunk_renderings`) only when there are
    renderings."""
    tmp = temp_folder(index_dir)
    tmp.mkdir(parents=True)
    dim = chunk_vecs.shape[1]
    if background_vecs is None:
        background_vecs = np.zeros((0, dim), dtype=np.float32)
    examples = examples or ExampleBank.empty(dim)
    words = words or chunk_words(chunks)
    try:
        _write_files(tmp, chunks, sentences, chunk_vecs, sentence_vecs, hnsw_above, words.tokens, rendered_vecs)
        write_small_files(tmp, background_vecs, examples, words)
        manifest = manifest_for(meta, background_vecs, sentence_vecs, len(chunks), file_list(tmp))
        _write_json(tmp / "manifest.json", manifest)
        _swap_into_place(tmp, index_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return index_dir


def write_small_files(folder: Path, background_vecs: np.ndarray, examples: ExampleBank, words: ChunkWords) -> None:
    """The files every store keeps beside its vectors: lexicon, everyday questions, worked examples."""
    lexicon = {"format": FORMAT + "/lexicon", "version": VERSION, "words": words.lexicon}
    _write_json(folder / "lexicon.json", {**lexicon, "dictionary": words.dictionary})
    np.save(folder / "background.npy", np.ascontiguousarray(background_vecs, dtype=STORED), allow_pickle=False)
    _write_examples(folder, examples)


def file_list(folder: Path) -> dict:
    """sha256 and size of every file under `folder`, as the manifest lists them."""
    return {
        p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def manifest_for(
    meta: dict, background_vecs: np.ndarray, sentence_vecs: np.ndarray, n_chunks: int, files: dict
) -> dict:
    """The manifest of an index: `meta` (rag.indexing.build_meta), the learned decision's
    corpus baseline (`rag.decision.everyday_baseline`) from the vectors as stored, counts, files."""
    from .decision import everyday_baseline

    baseline = everyday_baseline(as_stored(background_vecs), as_stored(sentence_vecs))
    return {
        "format": FORMAT,
        "version": VERSION,
        **meta,
        "baseline": {k: list(v) for k, v in baseline.items()},
        "counts": {"chunks": n_chunks, "sentences": int(sentence_vecs.shape[1])},
        "files": files,
    }


def _write_examples(tmp: Path, examples: ExampleBank) -> None:
    asked = examples.as_asked or (False,) * len(examples.ids)
    parts = zip(examples.ids, examples.questions, examples.queries, examples.rows, asked, strict=True)
    items = [{"id": i, "question": q, "query": t, "rows": list(r), "as_asked": a} for i, q, t, r, a in parts]
    _write_json(tmp / "examples.json", {"format": FORMAT + "/examples", "version": VERSION, "examples": items})
    np.save(tmp / "examples.npy", np.ascontiguousarray(examples.vectors, dtype=STORED), allow_pickle=False)


def as_stored(vectors: np.ndarray) -> np.ndarray:
    """The vectors as a load gives them back (`STORED` on disk, float32 in memory)."""
    return np.asarray(vectors).astype(STORED).astype(np.float32)


def _write_files(
    tmp: Path, chunks, sentences, chunk_vecs, sentence_vecs, hnsw_above: int, tokens, rendered_vecs=None
) -> None:
    import faiss

    ids = {c.id: i for i, c in enumerate(chunks)}
    _write_json(
        tmp / "chunks.json",
        {
            "format": FORMAT + "/chunks",
            "version": VERSION,
            "chunks": [asdict(c) for c in chunks],
            "sentences": [{**asdict(s), "chunk": ids[s.chunk_id]} for s in sentences],
        },
    )
    faiss.write_index(dense_index(chunk_vecs, hnsw_above), str(tmp / "dense.faiss"))
    if rendered_vecs is not None:
        faiss.write_index(dense_index(rendered_vecs, hnsw_above), str(tmp / "dense-rendered.faiss"))
    np.save(tmp / "sentences.npy", np.ascontiguousarray(sentence_vecs, dtype=STORED), allow_pickle=False)
    bm25_index(tokens).save(str(tmp / "bm25"), allow_pickle=False, show_progress=False)


def new_dense_index(dim: int, hnsw: bool):
    """An empty FAISS index for `dim`-dimensional unit vectors (inner product): HNSW with
    the store's graph parameters, or exact (flat)."""
    import faiss

    if not hnsw:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def dense_index(vectors: np.ndarray, hnsw_above: int):
    """The chunk vectors' FAISS index: exact (flat) up to `hnsw_above` vectors, HNSW above
    (measured in bench/README.md: recall@10 against flat, latency, build time)."""
    index = new_dense_index(vectors.shape[1], hnsw=len(vectors) > hnsw_above)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


# The Milvus store's default file (rag.milvus.milvus_uri) lives in the index folder:
# a rebuild of the folder store carries it over rather than deleting it with the old files.
KEPT = ("milvus.db",)


def _swap_into_place(tmp: Path, index_dir: Path) -> None:
    with build_lock(index_dir):
        for name in KEPT:
            if (index_dir / name).exists():
                os.replace(index_dir / name, tmp / name)
        swap_in(tmp, index_dir)


def read_manifest(index_dir: Path) -> dict:
    path = index_dir / "manifest.json"
    if not path.exists():
        raise IndexMissing(f"No index at {index_dir} (no manifest.json).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexCorrupt(f"{path} is not valid JSON ({e}).") from None
    return check_manifest(manifest, str(path))


def verify_files(index_dir: Path, manifest: dict) -> None:
    """Every file the manifest lists exists with its recorded size and sha256."""
    for name, info in manifest.get("files", {}).items():
        path = index_dir / name
        if not path.is_file():
            raise IndexCorrupt(f"{path} is missing.")
        if path.stat().st_size != info.get("bytes") or sha256_file(path) != info.get("sha256"):
            raise IndexCorrupt(f"{path} is damaged or was edited (checksum mismatch).")
    for required in REQUIRED_FILES:
        if required not in manifest.get("files", {}):
            raise IndexCorrupt(f"The manifest in {index_dir} does not list {required}.")


def load_index(index_dir: Path) -> IndexData:
    """Read and verify an index folder (freshness is checked by the caller)."""
    with _reading(index_dir):
        manifest = read_manifest(index_dir)
        verify_files(index_dir, manifest)
        try:
            return _read_files(index_dir, manifest)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise IndexCorrupt(f"{index_dir}: cannot read the index files ({type(e).__name__}: {e}).") from None


@contextmanager
def _reading(index_dir: Path):
    """The shared lock while an index is read; none where it cannot be made (a read-only disk)."""
    with ExitStack() as stack:
        if index_dir.parent.is_dir():
            with suppress(OSError):
                stack.enter_context(build_lock(index_dir, shared=True))
        yield


def _read_files(index_dir: Path, manifest: dict) -> IndexData:
    import bm25s
    import faiss

    from .search import FaissSearch

    data = json.loads((index_dir / "chunks.json").read_text(encoding="utf-8"))
    chunks = [Chunk(**c) for c in data["chunks"]]
    sentence_chunk = np.array([s.pop("chunk") for s in data["sentences"]], dtype=np.int64)
    sentences = [Sentence(**s) for s in data["sentences"]]
    dense = faiss.read_index(str(index_dir / "dense.faiss"))
    vecs = _vectors(index_dir / "sentences.npy")
    if vecs.ndim != 3 or dense.ntotal != len(chunks) or vecs.shape[1] != len(sentences):
        raise ValueError("vector counts do not match the chunk store")
    if dense.d != manifest["model"]["dim"] or vecs.shape[2] != dense.d:
        raise ValueError("vector dimension does not match the manifest")
    bm25 = bm25s.BM25.load(str(index_dir / "bm25"), allow_pickle=False, show_progress=False)
    small = read_small_files(index_dir, dense.d, len(sentences))
    rendered = None
    if "dense-rendered.faiss" in manifest["files"]:
        rendered = faiss.read_index(str(index_dir / "dense-rendered.faiss"))
        if (rendered.ntotal, rendered.d) != (dense.ntotal, dense.d):
            raise ValueError("the rendered chunk vectors do not match the chunk vectors")
    search = FaissSearch(dense, bm25, chunks, sentences, sentence_chunk, rendered)
    return IndexData(
        index_dir, manifest, chunks, sentences, sentence_chunk, dense, vecs, bm25, small.lexicon,
        small.background, small.examples, small.cutter, rendered, search,
    )  # fmt: skip


@dataclass(frozen=True)
class SmallFiles:
    lexicon: dict
    cutter: object
    background: np.ndarray
    examples: ExampleBank


def read_small_files(folder: Path, dim: int, n_sentences: int) -> SmallFiles:
    """What `write_small_files` wrote, checked against the index's dimension and sentence count."""
    from .lexical import query_cutter

    words = json.loads((folder / "lexicon.json").read_text(encoding="utf-8"))
    background = _vectors(folder / "background.npy")
    if background.ndim != 2 or background.shape[1] != dim:
        raise ValueError("background vectors do not match the manifest's dimension")
    examples = _read_examples(folder, dim, n_sentences)
    return SmallFiles(words["words"], query_cutter(words["dictionary"]), background, examples)


def _vectors(path: Path) -> np.ndarray:
    vectors = np.load(path, allow_pickle=False)
    if vectors.dtype != STORED:
        raise ValueError(f"{path.name} holds {vectors.dtype}, not {np.dtype(STORED)}")
    return vectors.astype(np.float32)


def _read_examples(index_dir: Path, dim: int, n_sentences: int) -> ExampleBank:
    items = json.loads((index_dir / "examples.json").read_text(encoding="utf-8"))["examples"]
    vectors = _vectors(index_dir / "examples.npy")
    rows = tuple(tuple(int(r) for r in item["rows"]) for item in items)
    if vectors.shape != (len(items), dim) or any(not 0 <= r < n_sentences for rr in rows for r in rr):
        raise ValueError("the worked examples do not match their vectors or the sentences")
    ids, questions, queries = (tuple(str(i[key]) for i in items) for key in ("id", "question", "query"))
    return ExampleBank(ids, questions, queries, rows, vectors, tuple(bool(i.get("as_asked")) for i in items))
