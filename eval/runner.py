"""Run a question file through one or more answering configurations, and score it.

A configuration is a name and an `Answerer`: a function from (question,
history) to an `ask --json` object. `answerers` builds them sharing one
embedder and one index: "ours" (the project's pipeline), "dense" and "bm25"
(the same pipeline with one retriever alone) and "langchain" (the plain
LangChain baseline in `eval.baselines`).

`load_questions` never stops at a bad line: it returns the good questions
and a message per bad line (`FILE:LINE: what is wrong`).

>>> fake = {"ours": lambda q, h: {"answer": q.upper(), "abstained": False, "citations": []}}
>>> qs = [Question(1, {"id": "a", "question": "why?"})]
>>> ev = evaluate(qs, fake, progress=False)
>>> ev.rows["ours"][0]["id"], ev.rows["ours"][0]["answer"], ev.summaries["ours"]["overall"]["n"]
('a', 'WHY?', 1)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.config import Settings
from rag.errors import InputError

from .metrics import breakdown, gold_problem, has_gold, score, summarise

Answerer = Callable[[str, Sequence[dict]], dict]
CONFIGS = ("ours", "dense", "bm25", "langchain")
DESCRIPTIONS = {
    "ours": "the project's pipeline ({retrieval} retrieval, sentence-level extractive answer, abstention)",
    "dense": "the same pipeline with dense (FAISS) retrieval only",
    "bm25": "the same pipeline with BM25 retrieval only",
    "langchain": "plain LangChain: RecursiveCharacterTextSplitter(1000, 200), FAISS top-4 (e5 as shipped), top chunk",
}


@dataclass(frozen=True)
class Question:
    line: int  # 1-based line number in the question file
    item: dict  # the parsed line; `question` is cleaned text, `id` always set
    scored: bool = True  # False when the line has no (usable) gold fields


@dataclass
class Evaluation:
    questions: list[Question]
    rows: dict[str, list[dict]]  # config -> one `--out` row per question
    scores: dict[str, list[dict]] = field(default_factory=dict)
    summaries: dict[str, dict] = field(default_factory=dict)  # config -> overall / by_lang / by_kind


def load_questions(path: Path, max_chars: int = 2000) -> tuple[list[Question], list[str]]:
    """The usable questions and one message per bad line; InputError if the file is unreadable."""
    from rag.cli import read_questions
    from rag.pipeline import clean_question

    good: list[Question] = []
    problems: list[str] = []
    for number, item in read_questions(path):
        where = f"{path}:{number}"
        if isinstance(item, str):
            problems.append(f"{where}: {item}; skipped")
            continue
        try:
            item["question"] = clean_question(item["question"], max_chars)
        except InputError as e:
            problems.append(f"{where}: {e} Skipped.")
            continue
        if not isinstance(item.get("history", []), list):
            problems.append(f'{where}: "history" must be a list of turns; skipped')
            continue
        item["id"] = str(item["id"])
        wrong = gold_problem(item) if has_gold(item) else None
        if wrong:
            problems.append(f"{where}: {wrong}; answered but not scored")
        good.append(Question(number, item, scored=has_gold(item) and not wrong))
    return good, problems


def answerers(settings: Settings, names: Sequence[str], say: Callable[[str], None]) -> dict[str, Answerer]:
    """The named configurations, loading the embedder and the index once for all."""
    from rag.embedding import load_embedder
    from rag.indexing import open_index
    from rag.pipeline import Pipeline

    embedder = load_embedder(settings)
    index = None
    out: dict[str, Answerer] = {}
    for name in names:
        if name == "langchain":
            from .baselines import LangChainBaseline

            # plain: the embedder as shipped, not the one this project fitted (rag.e5tuned)
            plain = embedder if not settings.tuned else load_embedder(settings.with_(tuned=0))
            out[name] = LangChainBaseline(settings, plain).ask
            continue
        index = index or open_index(settings, embedder, say)
        mode = settings.retrieval if name == "ours" else name
        # each question of the examples file (the dev set) is answered without its own example
        pipe = Pipeline(settings.with_(retrieval=mode), embedder, index, leave_out_asked=True)
        out[name] = lambda q, h, pipe=pipe: pipe.ask(q, h).to_dict()
    return out


def ask_one(answer: Answerer, q: Question) -> dict:
    """One `--out` row: the answer object plus `id` and `latency_ms` (or an
    `error`), as `python -m rag ask --json --questions` writes it."""
    from rag.cli import answer_row

    return answer_row(answer, q.item)


def warm_up(answer: Answerer, questions: Sequence[Question]) -> None:
    """Ask one question untimed: first calls pay one-off costs (tokenizer dictionaries,
    caches) that would otherwise land in the first question's latency."""
    if questions:
        with contextlib.suppress(InputError):
            answer(questions[0].item["question"], [])


def evaluate(
    questions: Sequence[Question], configs: dict[str, Answerer], progress: bool = True, source: str = "questions"
) -> Evaluation:
    """Ask every question of every configuration (with a progress bar), then score."""
    from tqdm import tqdm

    rows: dict[str, list[dict]] = {name: [] for name in configs}
    total = len(questions) * len(configs)
    # In a CI log every redraw is a line: redraw rarely when stderr is not a terminal.
    every = 0.1 if sys.stderr.isatty() else 10.0
    bar = tqdm(
        total=total, desc=source, unit="q", file=sys.stderr, disable=not progress, leave=False, mininterval=every
    )
    for answer in configs.values():
        warm_up(answer, questions)
    with bar:
        # Question by question, every configuration in turn: a burst of load
        # from elsewhere on the machine then slows all of them alike.
        for q in questions:
            bar.set_postfix_str(q.item["id"], refresh=False)
            for name, answer in configs.items():
                row = ask_one(answer, q)
                if "error" in row:
                    bar.write(f"error: {source}:{q.line}: {row['error']} ({name})", file=sys.stderr)
                rows[name].append(row)
                bar.update()
    evaluation = Evaluation(list(questions), rows)
    score_all(evaluation)
    return evaluation


def score_all(evaluation: Evaluation) -> None:
    """Fill in per-question scores and the overall / per-language / per-kind summaries."""
    golds = [q.item if q.scored else {"id": q.item["id"]} for q in evaluation.questions]
    for name, rows in evaluation.rows.items():
        scores = [score(g, r) for g, r in zip(golds, rows, strict=True)]
        evaluation.scores[name] = scores
        scored_golds = [g for g, s in zip(golds, scores, strict=True) if s["scored"]]
        scored = [s for s in scores if s["scored"]]
        evaluation.summaries[name] = {
            "overall": summarise(scores),
            "by_lang": breakdown(scored_golds, scored, "lang"),
            "by_kind": breakdown(scored_golds, scored, "kind"),
            "by_source": breakdown(scored_golds, scored, "source"),
        }
