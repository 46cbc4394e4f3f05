"""The manifest: an index's format, and what it was built from (both stores keep one).

`check_manifest` refuses a manifest of another program or format version;
`check_fresh` compares what it records (model, chunking, everyday questions,
worked examples, seeds) with this run's, so a stale index is rebuilt and a
fingerprint of another model is never queried.
"""

from __future__ import annotations

from .config import Settings
from .errors import IndexCorrupt, IndexStale
from .examples import examples_sha256
from .offtopic import background_sha256

FORMAT = "letter-rag-index"
VERSION = 14  # 2: sentence views; 3: background questions; 4: worked examples; 5: query dictionary;
# 6: float16; 7: pages; 8: sentence languages and renderings; 9: a rendering view; 10: rendered chunks;
# 11: the lexicon also from Chinese to English documents' words; 12: language nulls (rag.bilingual);
# 13: BM25 reads English words by their stems (rag.lexical.terms); 14: pinyin of Chinese words (rag.lexicon)


def chunker_settings(settings: Settings) -> dict:
    return {"chunk_size": settings.chunk_size, "chunk_min": settings.chunk_min, "splitter": "sentence-v1"}


def check_manifest(manifest: object, where: str) -> dict:
    """`manifest` if it is one this program reads; IndexCorrupt or IndexStale naming `where` otherwise."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexCorrupt(f"{where} is not a letter-rag index manifest.")
    if manifest.get("version") != VERSION:
        raise IndexStale(f"{where} has format version {manifest.get('version')}, this program reads {VERSION}.")
    return manifest


def check_fresh(manifest: dict, settings: Settings, seeds: dict[str, str], family: str, fingerprint: str) -> None:
    """Raise IndexStale when the index was built from other inputs."""
    model = manifest.get("model", {})
    if (model.get("family"), model.get("fingerprint")) != (family, fingerprint):
        raise IndexStale(
            f"The index was built with model {model.get('family')} ({model.get('fingerprint')}); "
            f"this run uses {family} ({fingerprint})."
        )
    if manifest.get("chunker") != chunker_settings(settings):
        raise IndexStale("The index was built with other chunking settings.")
    if manifest.get("background") != background_sha256():
        raise IndexStale("The everyday questions (rag/background.txt) changed since the index was built.")
    if manifest.get("examples") != examples_sha256(settings.examples):
        now = settings.examples or "none"
        raise IndexStale(f"The worked examples changed since the index was built (RAG_EXAMPLES: {now}).")
    if manifest.get("seeds") != seeds:
        changed = sorted(set(seeds.items()) ^ set(manifest.get("seeds", {}).items()))
        names = sorted({name for name, _ in changed})
        raise IndexStale(f"The seeds changed since the index was built: {', '.join(names)}.")
