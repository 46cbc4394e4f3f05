"""Documents in two languages without renderings (rag.bilingual), on two
training texts of corpora/ indexed together (conftest.two_texts), with the real model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag import bilingual
from rag.pipeline import Pipeline
from rag.search import Where


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


def test_without_the_nulls_a_chinese_question_stays_with_the_chinese_text(two_texts) -> None:
    """What the correction is for: the same index read as if it had none."""
    manifest = {k: v for k, v in two_texts.index.manifest.items() if k != "language_nulls"}
    plain = replace(two_texts.index, manifest=manifest)
    pipe = Pipeline(two_texts.settings, two_texts.embedder, plain)
    found = pipe.retriever.search("文件名太长的话会怎么处理？")
    assert found.sentences[0].sentence.source == "db-backup-migration-pgbackrest.zh.txt"
    assert bilingual.calibrate({}, "zh") is None


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
