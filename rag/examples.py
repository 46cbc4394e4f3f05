"""Worked examples: questions whose answer sentences are known steer the ranking.

e5-small places many sentences of the letter within a hair of each other for a
question, and the wrong one is often first. But the project has hundreds of
questions whose evidence is known (`eval/questions.jsonl`), and a new
question close in meaning to one of them most likely wants the same sentences.
The index keeps, for each answerable example, the vector of its query (the
same text the retriever embeds for it: with its conversation and the Chinese
words its English words translate to) and the sentences its evidence lies in.
At ask time a sentence gains `WEIGHT * (cosine - FLOOR)` for the closest
example above `FLOOR` that it answers and that asks for the same kind of fact
(`rag.answertype`): e5 rates "他是被 Anthropic 辞退的吗?" (was he fired?) at
0.974 to "他为什么离开 Anthropic?", and without that condition the answer to
"fired?" went first for "why?".

Examples only reorder sentences: the cosine that decides abstention is
untouched (pointing unanswerable questions at their nearest unanswerable
example declined far too many answerable ones: false abstention 0.004 -> 0.026
on the dev set at the least strict limit tried).

>>> import numpy as np
>>> bank = ExampleBank(("q1", "q2"), ("Why?", "When?"), ("a", "b"), ((3,), (5, 6)), np.eye(2, dtype=np.float32))
>>> q = np.array([0.96, 0.28], dtype=np.float32)
>>> {row: round(gain, 3) for row, gain in bank.bonus(q, "reason").items()}
{3: 0.08}
>>> bank.bonus(q, "date"), bank.bonus(q, "reason", leave_out="a")
({}, {})
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .answertype import expected_type
from .errors import InputError
from .folders import sha256_file
from .records import Sentence

# Chosen on eval/questions.jsonl, each question left out of its own lookup, and
# checked on two sets of 50 questions written independently of the project
# (not held-out sets): hit@1 0.805 -> 0.853 on the dev set, 0.800 -> 0.875 and
# 0.875 -> 0.925 on the two sets; a floor of 0.85 ranks alike; a weight of 2
# starts to hurt answer accuracy.
FLOOR = 0.88
WEIGHT = 1.0
SHARED_CHARS = 8  # evidence and sentence sharing this many characters in a row


@dataclass(frozen=True)
class Example:
    """One answerable question of the examples file."""

    id: str
    question: str
    history: tuple[dict, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class ExampleBank:
    """What the index keeps of the examples: ids, questions, the embedded query
    texts, the sentence rows each one's evidence lies in, and the query vectors."""

    ids: tuple[str, ...]
    questions: tuple[str, ...]
    queries: tuple[str, ...]
    rows: tuple[tuple[int, ...], ...]
    vectors: np.ndarray  # (examples, dim), unit length
    # Whether each entry's query is the question as asked (rag.lexicon.expand). A question
    # that renderings bridge has two entries, as asked and with glosses: a query meets the
    # entries embedded as it was, since the two kinds of vector do not compare alike.
    as_asked: tuple[bool, ...] = ()

    @classmethod
    def empty(cls, dim: int) -> ExampleBank:
        return cls((), (), (), (), np.zeros((0, dim), dtype=np.float32))

    def embedded_as(self, as_asked: bool) -> np.ndarray:
        """Mask of the entries whose query was embedded as asked (True) or with glosses."""
        flags = np.array(self.as_asked or [False] * len(self.ids), dtype=bool)
        return flags == as_asked

    @cached_property
    def kinds(self) -> tuple[str | None, ...]:
        """The kind of fact each example asks for, by today's rules (not stored,
        so a change to rag.answertype needs no rebuild)."""
        return tuple(expected_type(q) for q in self.questions)

    def nearest(self, qvec: np.ndarray, leave_out: str | None = None, among: np.ndarray | None = None) -> float:
        """Cosine of the closest example to the query (`leave_out`, `among` as for
        `bonus`); -1 with none. A question far from every answerable example a
        corpus has is less likely to be answerable (rag.decision)."""
        if not self.queries:
            return -1.0
        sims = self.vectors @ qvec
        keep = np.ones(len(sims), dtype=bool) if among is None else among.copy()
        if leave_out is not None:
            keep &= np.array([q != leave_out for q in self.queries], dtype=bool)
        return float(sims[keep].max()) if keep.any() else -1.0

    def bonus(
        self, qvec: np.ndarray, kind: str | None, leave_out: str | None = None, among: np.ndarray | None = None
    ) -> dict[int, float]:
        """Sentence row → what it gains for a query asking for `kind`. `leave_out`
        is a query text whose own example is ignored: an evaluation over the
        examples file must not look its answers up. `among`: which examples may
        count (a mask), e.g. those embedded the way the query was."""
        if not self.queries:
            return {}
        sims = self.vectors @ qvec
        if among is not None:
            sims = np.where(among, sims, -1.0)
        gains: dict[int, float] = {}
        for i in np.flatnonzero(sims > FLOOR).tolist():
            if self.kinds[i] != kind or self.queries[i] == leave_out:
                continue
            gain = WEIGHT * (float(sims[i]) - FLOOR)
            for row in self.rows[i]:
                gains[row] = max(gains.get(row, 0.0), gain)
        return gains


def load_examples(path: Path | None) -> list[Example]:
    """The answerable questions of a JSONL file in the eval schema (`id`,
    `question`, `evidence`, `answerable`, optional `history`); None: none.
    A line that is not such a question is an InputError naming it."""
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"Cannot read the examples file {path}: {e}") from None
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if item.get("answerable"):
                out.append(_example(item))
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError) as e:
            raise InputError(f"{path}:{number}: not a worked example ({type(e).__name__}: {e}).") from None
    return out


def _example(item: dict) -> Example:
    evidence = item["evidence"]
    history = item.get("history") or []
    if not isinstance(item["question"], str) or not all(isinstance(e, str) for e in evidence):
        raise TypeError("question and evidence must be text")
    if not all(isinstance(t, dict) for t in history):
        raise TypeError("history must be a list of turns")
    return Example(str(item["id"]), item["question"], tuple(history), tuple(evidence))


def examples_sha256(path: Path | None) -> str | None:
    """What the index records, so edited examples make it stale."""
    if path is None:
        return None
    try:
        return sha256_file(path)
    except OSError as e:
        raise InputError(f"Cannot read the examples file {path}: {e}") from None


def evidence_rows(example: Example, sentences: list[Sentence]) -> tuple[int, ...]:
    """The sentences an example's evidence lies in: the evidence holds the
    sentence or the sentence holds it, or they share `SHARED_CHARS` in a row
    (an evidence clause can span two sentences).

    >>> s = [Sentence("c", "a.txt", "", 1, 0, 9, "他离开了 Anthropic。"),
    ...      Sentence("c", "a.txt", "", 1, 9, 15, "他去学诗歌。")]
    >>> evidence_rows(Example("q1", "?", (), ("他去学诗歌",)), s)
    (1,)
    """
    rows = []
    for row, sentence in enumerate(sentences):
        text = sentence.text.strip()
        if any(_overlap(text, ev) for ev in example.evidence):
            rows.append(row)
    return tuple(rows)


def _overlap(text: str, evidence: str) -> bool:
    if not text or not evidence:
        return False
    return evidence in text or text in evidence or shares_run(text, evidence)


def shares_run(a: str, b: str, n: int = SHARED_CHARS) -> bool:
    """`a` and `b` have `n` characters in a row in common (also how the
    evaluation decides that a citation supports the gold: eval.metrics).

    >>> shares_run("他已于 2 月 9 日正式离职。", "于 2 月 9 日正"), shares_run("2 月 9 日", "2 月 9 日")
    (True, False)
    """
    if len(a) < n or len(b) < n:
        return False
    grams = {b[i : i + n] for i in range(len(b) - n + 1)}
    return any(a[i : i + n] in grams for i in range(len(a) - n + 1))
