"""Renderings beside the seeds: complete, kept in step with the seed, and used
to answer in the asker's language while citations point at the original."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rag import renderings
from rag.config import REPO, Settings
from rag.errors import IndexStale, SeedsError
from rag.indexing import build, open_index
from rag.lexicon import expand
from rag.manifest import check_fresh
from rag.pipeline import Pipeline
from rag.seeds import read_seed, seed_files, seed_hashes
from rag.store import read_manifest
from rag.ui import sources_html

from .conftest import SEED, two_texts_seeds

SEEDS = REPO / "seeds"
RENDERINGS = renderings.renderings_path(SEED, "en")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _renderings_files() -> list[Path]:
    return [p for p in sorted(SEEDS.rglob("*.jsonl")) if renderings.is_renderings_file(p)]


def test_every_sentence_of_a_seed_with_renderings_has_exactly_one() -> None:
    files = _renderings_files()
    assert RENDERINGS in files
    for path in files:
        seed = path.with_name(path.name.rsplit(".", 2)[0])
        doc = read_seed(seed, SEEDS)
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        cover = renderings.check(doc, renderings.load(path))  # load refuses a second rendering of a sentence
        assert cover.missing == () and cover.orphaned == (), f"{path.name}: {cover}"
        assert len(lines) == len(renderings.units(doc))


def test_every_sentence_of_the_index_carries_its_rendering(pipeline) -> None:
    # including a line joined to the one it introduces ("他在信中明确表示:" + the quotation)
    sentences = [s for s in pipeline.index.sentences if s.source == SEED.name]
    assert any("\n" in s.text for s in sentences)
    assert [s.text for s in sentences if not s.rendering] == []
    assert {s.lang for s in sentences} == {"zh"}


def test_a_renderings_file_is_not_a_document_but_its_edits_make_the_index_stale(tmp_path: Path) -> None:
    assert RENDERINGS not in seed_files(SEEDS)
    assert RENDERINGS.name in seed_hashes(SEEDS)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds)
    shutil.copy(RENDERINGS, seeds)
    manifest = read_manifest(REPO / "index")
    settings = Settings.from_env(seeds_dir=seeds)
    model = manifest["model"]["family"], manifest["model"]["fingerprint"]
    check_fresh(manifest, settings, seed_hashes(seeds), *model)
    edited = seeds / RENDERINGS.name
    edited.write_text(edited.read_text(encoding="utf-8").replace("February 9", "9 February"), encoding="utf-8")
    with pytest.raises(IndexStale):
        check_fresh(manifest, settings, seed_hashes(seeds), *model)


def test_a_changed_seed_sentence_shows_up_as_missing_and_orphaned(tmp_path: Path, pipeline) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    text = SEED.read_text(encoding="utf-8").replace("他选择拥抱不确定性。", "他选择了拥抱不确定性。")
    (seeds / SEED.name).write_text(text, encoding="utf-8")
    shutil.copy(RENDERINGS, seeds)
    cover = renderings.check(read_seed(seeds / SEED.name, seeds), renderings.load(seeds / RENDERINGS.name))
    assert cover.missing == ("他选择了拥抱不确定性。",) and cover.orphaned == ("他选择拥抱不确定性。",)
    summary = build(Settings.from_env(seeds_dir=seeds, index_dir=tmp_path / "index", examples=None), pipeline.embedder)
    assert f"note: {RENDERINGS.name}: 1 sentences without a rendering, 1 renderings" in summary.line()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "expected"),
        ('{"original": "甲。"}', "expected"),
        ('{"original": "甲。", "rendering": "  "}', "non-empty"),
        ('{"original": "甲。", "rendering": "A."}\n{"original": "甲。", "rendering": "B."}', "second rendering"),
    ],
)
def test_a_malformed_renderings_file_is_named_with_its_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "a.txt.en.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(SeedsError, match=rf"a\.txt\.en\.jsonl:\d+: .*{message}"):
        renderings.load(path)


def test_an_english_question_is_answered_in_english_and_cited_to_the_chinese(pipeline) -> None:
    answer = pipeline.ask("why did he leave?")
    assert not answer.abstained and answer.lang == "en" and not answer.notice
    assert not _CJK.search(answer.answer), answer.answer
    text = SEED.read_text(encoding="utf-8")
    for c in answer.citations:
        assert _CJK.search(c.quote) and c.quote in text[c.start : c.end]  # the original passage, as before
        assert c.quote_translation and f"{c.quote_translation}[{c.n}]" in answer.answer
    data = answer.to_dict()
    assert data["lang"] == "en" and all(c["quote_translation"] for c in data["citations"])


def test_a_chinese_question_still_gets_the_chinese_quotation(pipeline) -> None:
    answer = pipeline.ask("他为什么离开?")
    assert not answer.abstained and answer.lang == "zh"
    assert all(not c.quote_translation and f"{c.quote}[{c.n}]" in answer.answer for c in answer.citations)


def test_an_abstention_shows_the_closest_passages_with_their_renderings(pipeline) -> None:
    answer = pipeline.ask("What is the boiling point of water at sea level?")
    assert answer.abstained and answer.answer == "The article does not say."
    assert answer.closest and all(c.quote_translation for c in answer.closest)


def test_the_sources_panel_shows_the_rendering_under_the_highlighted_original(pipeline) -> None:
    answer = pipeline.ask("What does he plan to study?")
    panel = sources_html(answer)
    first = answer.citations[0]
    assert "<mark>" in panel and 'class="rag-rendering" lang="en"' in panel
    assert panel.index("<mark>") < panel.index(_html(first.quote_translation))


def _html(text: str) -> str:
    import html

    return html.escape(text)


@pytest.fixture(scope="module")
def english_doc(tmp_path_factory, pipeline) -> Pipeline:
    """A short English document with Chinese renderings, indexed on its own."""
    tmp = tmp_path_factory.mktemp("reverse")
    seeds = tmp / "seeds"
    seeds.mkdir()
    lines = {
        "The Carrow Point lighthouse was built in 1872.": "卡罗角灯塔建于 1872 年。",
        "Its keeper, Ada Finch, lit the lamp every night for forty years.": "守塔人艾达·芬奇四十年来每晚点亮灯。",
        "The lamp was electrified in 1951.": "灯在 1951 年改为电力照明。",
    }
    (seeds / "lighthouse.md").write_text("# Carrow Point\n\n" + "\n\n".join(lines) + "\n", encoding="utf-8")
    pairs = [("Carrow Point", "卡罗角"), *lines.items()]
    renderings.write(seeds / "lighthouse.md.zh.jsonl", pairs)
    settings = Settings.from_env(seeds_dir=seeds, index_dir=tmp / "index", examples=None)
    summary = build(settings, pipeline.embedder)
    assert not summary.notes and not summary.skipped
    return Pipeline(settings, pipeline.embedder, open_index(settings, pipeline.embedder, say=lambda _m: None))


def test_a_chinese_question_over_an_english_document_is_answered_in_chinese(english_doc) -> None:
    answer = english_doc.ask("卡罗角灯塔是哪一年建造的?")
    assert not answer.abstained and answer.lang == "zh", answer
    assert "1872" in answer.answer and "卡罗角灯塔建于" in answer.answer
    first = answer.citations[0]
    assert first.quote.startswith("The Carrow Point lighthouse was built in 1872.")
    assert first.quote_translation.startswith("卡罗角灯塔建于 1872 年。")


def test_without_renderings_the_answer_keeps_the_documents_language_and_says_how_to_add_them(
    tmp_path: Path, pipeline
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds)
    settings = Settings.from_env(seeds_dir=seeds, index_dir=tmp_path / "index", examples=None)
    build(settings, pipeline.embedder)
    plain = Pipeline(settings, pipeline.embedder, open_index(settings, pipeline.embedder, say=lambda _m: None))
    answer = plain.ask("why did he leave?")
    assert not answer.abstained and answer.lang == "zh" and "python -m rag translate" in answer.notice
    assert all(not c.quote_translation for c in answer.citations)
    assert json.loads(json.dumps(answer.to_dict()))["lang"] == "zh"


def test_matching_the_renderings_is_a_setting(pipeline, settings) -> None:
    """On by default: an English question over the letter is embedded as asked and
    meets the renderings; off, it is matched as if there were none."""
    found = pipeline.retriever.search("why did he leave?")
    assert found.same_language and "离开的原因" in found.sentences[0].sentence.text
    off = Pipeline(settings.with_(match_renderings=0), pipeline.embedder, pipeline.index)
    plain = off.retriever.search("why did he leave?")
    assert not plain.same_language and "离开的原因" in plain.sentences[0].sentence.text
    answer = off.ask("why did he leave?")
    assert answer.lang == "en" and "reasons for leaving" in answer.answer  # still answered from the renderings


def test_a_chinese_question_finds_the_english_document_among_chinese_ones(tmp_path: Path, pipeline, two_texts) -> None:
    """Two training texts of corpora/: Chinese questions about the English one.
    With their renderings, dense search and BM25 also read each passage in the
    other language (`chunking.chunk_renderings`); without them the build
    records how close everyday questions come to each language, which keeps
    the Chinese text from crowding the English one out (rag.bilingual)."""
    questions = ["文件名太长的话会怎么处理？", "索引里每个文件大概占多少空间？"]  # te07, te12
    seeds = two_texts_seeds(tmp_path / "seeds", with_renderings=True)
    settings = Settings.from_env(seeds_dir=seeds, index_dir=tmp_path / "index").with_(examples=None)
    build(settings, pipeline.embedder)
    rendered = Pipeline(settings, pipeline.embedder, open_index(settings, pipeline.embedder, say=lambda _m: None))
    assert "language_nulls" not in rendered.index.manifest  # the renderings bridge both languages
    for pipe in (rendered, two_texts):
        assert [pipe.retriever.search(q).sentences[0].sentence.source for q in questions] == [
            "ferrypix-photo-sync.en.txt"
        ] * 2, pipe.index.path


def test_without_renderings_a_chinese_question_is_translated_into_the_english_documents_words(
    tmp_path: Path, pipeline
) -> None:
    """The dictionary read backwards (rag.lexicon.build_reverse): the Chinese
    words of the question become the English words of the document, for BM25
    and the dense query alike, as English questions over Chinese text do."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "harbour.md").write_text(
        "# Carrow Point\n\nThe lighthouse was built in 1872 on the northern cliff.\n\n"
        "Its keeper rowed to the village every Sunday for bread and letters.\n\n"
        "A storm in 1903 broke the lantern glass, and the light was dark for a month.\n",
        encoding="utf-8",
    )
    settings = Settings.from_env(seeds_dir=seeds, index_dir=tmp_path / "index", examples=None)
    build(settings, pipeline.embedder)
    pipe = Pipeline(settings, pipeline.embedder, open_index(settings, pipeline.embedder, say=lambda _m: None))
    _, translated, text = expand("灯笼的玻璃是哪一年打碎的？", pipe.index.lexicon, pipe.index.cutter)
    assert {"lantern", "glass"} <= set(translated) and text.startswith("灯笼的玻璃是哪一年打碎的？ ")
    assert "lighthouse" in expand("灯塔是哪一年建的？", pipe.index.lexicon, pipe.index.cutter)[1]
    answer = pipe.ask("灯笼的玻璃是哪一年打碎的？")
    assert not answer.abstained and answer.citations[0].quote.startswith("A storm in 1903"), answer
