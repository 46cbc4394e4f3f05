"""Scoring one answer against its gold fields, and summarising many.

A passage *supports* the gold when it contains one of the `evidence` strings,
or shares at least 8 consecutive characters with one. An answer is *correct*
when it did not abstain and contains a phrase from every `answer_keys` group
(spaces ignored, so "2月9日" matches "2 月 9 日"). Retrieval is scored on the
citation list as the user sees it: an abstention cites nothing, so it misses.

>>> supports("他于 2 月 9 日正式离职。", ["已于 2 月 9 日正式离职"])
True
>>> has_keys("He left on 2月9日 [1]", [["2 月 9 日"], ["离职", "left"]])
True
>>> gold = {"evidence": ["已于 2 月 9 日正式离职"], "answer_keys": [["2 月 9 日"]], "answerable": True}
>>> s = score(gold, {"answer": "2 月 9 日", "citations": [{"text": "无关"}, {"text": "于 2 月 9 日正式离职"}]})
>>> s["verdict"], s["rank"], s["hit@1"], s["hit@3"], s["rr"]
('ok', 2, False, True, 0.5)
>>> summarise([s])["mrr"], summarise([s])["cite_precision"]
(0.5, 0.5)
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence

from rag.decision import detect_lang
from rag.examples import shares_run  # the worked examples find their sentences the same way

GOLD_FIELDS = ("evidence", "answer_keys", "answerable")


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def supports(passage: str, evidence: Sequence[str]) -> bool:
    return any(ev in passage or shares_run(passage, ev) for ev in evidence)


def has_keys(answer: str, answer_keys: Sequence[Sequence[str]]) -> bool:
    text = _squash(answer)
    return all(any(_squash(k) in text for k in group) for group in answer_keys)


_MARKERS = re.compile(r"\[\d+\]")


def answer_lang(answer: str) -> str:
    """The language an answer is written in, its citation markers aside.

    >>> answer_lang("The article says: he left on February 9.[1]"), answer_lang("他于 2 月 9 日离职。[1]")
    ('en', 'zh')
    """
    return detect_lang(_MARKERS.sub("", answer))


def has_gold(item: dict) -> bool:
    """Whether a question line carries anything to score against.

    >>> has_gold({"id": "x", "question": "why?"}), has_gold({"question": "why?", "answerable": False})
    (False, True)
    """
    return any(f in item for f in GOLD_FIELDS)


def gold_problem(item: dict) -> str | None:
    """What is wrong with a line's gold fields (None when they can be scored).

    >>> gold_problem({"evidence": "a sentence", "answer_keys": []})
    '"evidence" must be a list of strings'
    """
    evidence, keys = item.get("evidence", []), item.get("answer_keys", [])
    if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
        return '"evidence" must be a list of strings'
    if not isinstance(keys, list) or not all(
        isinstance(g, list) and g and all(isinstance(k, str) for k in g) for g in keys
    ):
        return '"answer_keys" must be a list of non-empty lists of strings'
    if not isinstance(item.get("answerable", True), bool):
        return '"answerable" must be true or false'
    if item.get("answerable", bool(evidence or keys)) and not (evidence and keys):
        return 'an answerable question needs "evidence" and "answer_keys"'
    return None


def score(gold: dict, result: dict) -> dict:
    """Per-question scores; `gold` is a question line, `result` an `ask --json` object.

    Without gold fields only what needs no gold is kept (latency, citation
    lengths). A result with an `error` counts as a miss.
    """
    cites = [c.get("text", "") for c in result.get("citations", [])]
    abstained = bool(result.get("abstained"))
    out: dict = {
        "scored": has_gold(gold),
        "abstained": abstained,
        "cite_lengths": [len(t) for t in cites],
        "latency_ms": result.get("latency_ms", result.get("timings_ms", {}).get("total")),
        # what the decision rested on (rag.decision); None for a pipeline that does not say
        "decision_score": (result.get("decision") or {}).get("score"),
    }
    if not abstained and "error" not in result and result.get("answer"):
        asked = gold.get("lang") or detect_lang(gold.get("question", ""))
        out["in_lang"] = answer_lang(result["answer"]) == asked
    if not out["scored"]:
        return out
    evidence = gold.get("evidence") or []
    keys = gold.get("answer_keys") or []
    answerable = bool(gold.get("answerable", bool(evidence or keys)))
    out["answerable"] = answerable
    if not answerable:
        out["verdict"] = "error" if "error" in result else ("ok" if abstained else "answered")
        return out
    ranks = [i for i, text in enumerate(cites, start=1) if supports(text, evidence)]
    first = ranks[0] if ranks else None
    correct = not abstained and "error" not in result and has_keys(result.get("answer", ""), keys)
    out.update(
        {
            "rank": first,
            "hit@1": first == 1,
            "hit@3": first is not None and first <= 3,
            "hit@5": first is not None and first <= 5,
            "rr": 1.0 / first if first else 0.0,
            "correct": correct,
            "cites_supporting": len(ranks),
            "cites": len(cites),
            "verdict": _verdict(result, abstained, correct),
        }
    )
    if gold.get("source"):  # the document the answer lies in: citations from any other are cross-talk
        sources = [c.get("source") for c in result.get("citations", [])]
        out["cites_elsewhere"] = sum(src != gold["source"] for src in sources)
    return out


def _verdict(result: dict, abstained: bool, correct: bool) -> str:
    if "error" in result:
        return "error"
    if abstained:
        return "abstained"
    return "ok" if correct else "wrong"


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def percentile(values: Sequence[float], q: float, digits: int = 2) -> float | None:
    """The `q` quantile (0 to 1) interpolated linearly between the closest ranks,
    as numpy's default, rounded to `digits`; None for no values. The benchmarks
    (`bench.measure.summary`) take their percentiles with it too.

    >>> percentile([1, 2, 3, 4, 5], 0.95), percentile([1, 2, 3, 4], 0.5), percentile([7], 0.95)
    (4.8, 2.5, 7.0)
    """
    if not len(values):
        return None
    values = sorted(values)
    pos = q * (len(values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return round(float(values[lo] + (values[hi] - values[lo]) * (pos - lo)), digits)


def summarise(scores: list[dict]) -> dict:
    """Aggregate metrics over scored questions (None where nothing counts)."""
    ans = [s for s in scores if s.get("scored", True) and s.get("answerable")]
    unans = [s for s in scores if s.get("scored", True) and s.get("answerable") is False]
    cited = sum(s["cites"] for s in ans)
    lengths = [n for s in scores for n in s["cite_lengths"]]
    latencies = [s["latency_ms"] for s in scores if s.get("latency_ms") is not None]
    return {
        "n": len(scores),
        "answerable": len(ans),
        "unanswerable": len(unans),
        "hit@1": _mean(s["hit@1"] for s in ans),
        "hit@3": _mean(s["hit@3"] for s in ans),
        "hit@5": _mean(s["hit@5"] for s in ans),
        "mrr": _mean(s["rr"] for s in ans),
        "answer_acc": _mean(s["correct"] for s in ans),
        "cite_precision": round(sum(s["cites_supporting"] for s in ans) / cited, 4) if cited else None,
        "cite_median_chars": statistics.median(lengths) if lengths else None,
        "abstain_recall": _mean(s["abstained"] for s in unans),
        "false_abstain": _mean(s["abstained"] for s in ans),
        "decision_auroc": decision_auroc(ans, unans),
        "cross_document": _cross_document(ans),
        # answers (not abstentions) written in the language the question was asked in
        "in_lang": _mean(s["in_lang"] for s in scores if "in_lang" in s),
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p95_ms": percentile(latencies, 0.95),
    }


def _cross_document(answerable: list[dict]) -> float | None:
    """Share of the citations of questions with a `source` that cite another document."""
    named = [s for s in answerable if "cites_elsewhere" in s]
    cites = sum(s["cites"] for s in named)
    return round(sum(s["cites_elsewhere"] for s in named) / cites, 4) if cites else None


def auroc(score: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Probability that a random positive scores above a random negative (ties
    count half); None without both.

    >>> auroc([0.9, 0.8, 0.3, 0.8], [True, True, False, False])
    0.875
    """
    pos = [x for x, p in zip(score, positive, strict=True) if p]
    neg = [x for x, p in zip(score, positive, strict=True) if not p]
    if not pos or not neg:
        return None
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return round(wins / (len(pos) * len(neg)), 4)


def decision_auroc(answerable: list[dict], unanswerable: list[dict]) -> float | None:
    """How well the decision's score tells answerable questions from the rest."""
    labelled = [(s, True) for s in answerable] + [(s, False) for s in unanswerable]
    pairs = [(s.get("decision_score"), p) for s, p in labelled if s.get("decision_score") is not None]
    return auroc([x for x, _ in pairs], [p for _, p in pairs]) if pairs else None


def breakdown(golds: Sequence[dict], scores: Sequence[dict], field: str) -> dict[str, dict]:
    """`summarise` per value of a question field (e.g. "lang", "kind"), sorted by value.

    Questions without the field are left out of the breakdown.

    >>> a = {"scored": True, "answerable": False, "abstained": True, "cite_lengths": [], "latency_ms": 1.0}
    >>> b = {**a, "abstained": False}
    >>> {k: v["abstain_recall"] for k, v in breakdown([{"lang": "zh"}, {"lang": "en"}], [a, b], "lang").items()}
    {'en': 0.0, 'zh': 1.0}
    """
    groups: dict[str, list[dict]] = {}
    for gold, s in zip(golds, scores, strict=True):
        value = gold.get(field)
        if isinstance(value, str) and value:
            groups.setdefault(value, []).append(s)
    return {value: summarise(groups[value]) for value in sorted(groups)}


# Threshold flags: (metric, direction). "min" fails below the bound, "max" above it.
THRESHOLDS = {
    "min_hit1": ("hit@1", "min"),
    "min_answer": ("answer_acc", "min"),
    "min_abstain": ("abstain_recall", "min"),
    "max_false_abstain": ("false_abstain", "max"),
}


def missed_thresholds(summary: dict, bounds: dict[str, float | None]) -> list[str]:
    """One message per bound the summary misses; a metric nobody measured misses too.

    >>> missed_thresholds({"hit@1": 0.8, "false_abstain": 0.1}, {"min_hit1": 0.85, "max_false_abstain": 0.2})
    ['hit@1 = 0.800 is below the minimum 0.850']
    """
    out = []
    for flag, bound in bounds.items():
        if bound is None:
            continue
        metric, direction = THRESHOLDS[flag]
        value = summary.get(metric)
        if value is None:
            out.append(f"{metric} was not measured (no questions it applies to), so --{flag.replace('_', '-')} fails")
        elif direction == "min" and value < bound:
            out.append(f"{metric} = {value:.3f} is below the minimum {bound:.3f}")
        elif direction == "max" and value > bound:
            out.append(f"{metric} = {value:.3f} is above the maximum {bound:.3f}")
    return out
