"""Scoring one answer against its gold fields, and summarising many.

A passage *supports* the gold when it contains one of the `evidence` strings,
or shares at least 8 consecutive characters with one. An answer is *correct*
when it did not abstain and contains a phrase from every `answer_keys` group
(spaces ignored, so "2月9日" matches "2 月 9 日").

>>> supports("他于 2 月 9 日正式离职。", ["已于 2 月 9 日正式离职"])
True
>>> has_keys("He left on 2月9日 [1]", [["2 月 9 日"], ["离职", "left"]])
True
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

SHARED_RUN = 8


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def supports(passage: str, evidence: Sequence[str]) -> bool:
    return any(ev in passage or _shares_run(passage, ev, SHARED_RUN) for ev in evidence)


def _shares_run(a: str, b: str, n: int) -> bool:
    if len(a) < n or len(b) < n:
        return False
    grams = {b[i : i + n] for i in range(len(b) - n + 1)}
    return any(a[i : i + n] in grams for i in range(len(a) - n + 1))


def has_keys(answer: str, answer_keys: Sequence[Sequence[str]]) -> bool:
    text = _squash(answer)
    return all(any(_squash(k) in text for k in group) for group in answer_keys)


def score(gold: dict, result: dict) -> dict:
    """Per-question scores; `gold` is a question line, `result` an `ask --json` object."""
    evidence = gold.get("evidence") or []
    answerable = bool(gold.get("answerable", True))
    cites = [c.get("text", "") for c in result.get("citations", [])]
    ranks = [i for i, text in enumerate(cites, start=1) if supports(text, evidence)]
    first = ranks[0] if ranks else None
    abstained = bool(result.get("abstained"))
    out = {
        "answerable": answerable,
        "abstained": abstained,
        "cite_lengths": [len(t) for t in cites],
        "latency_ms": result.get("latency_ms", result.get("timings_ms", {}).get("total")),
    }
    if answerable:
        out.update(
            {
                "hit@1": first == 1,
                "hit@3": first is not None and first <= 3,
                "hit@5": first is not None and first <= 5,
                "rr": 1.0 / first if first else 0.0,
                "correct": (not abstained) and has_keys(result.get("answer", ""), gold.get("answer_keys") or []),
                "cites_supporting": len(ranks),
                "cites": len(cites),
            }
        )
    return out


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def summarise(scores: list[dict]) -> dict:
    """Aggregate metrics over scored questions (None where nothing counts)."""
    ans = [s for s in scores if s["answerable"]]
    unans = [s for s in scores if not s["answerable"]]
    cited = sum(s["cites"] for s in ans)
    lengths = [n for s in scores for n in s["cite_lengths"]]
    latencies = [s["latency_ms"] for s in scores if s.get("latency_ms") is not None]
    return {
        "n": len(scores),
        "hit@1": _mean(s["hit@1"] for s in ans),
        "hit@3": _mean(s["hit@3"] for s in ans),
        "hit@5": _mean(s["hit@5"] for s in ans),
        "mrr": _mean(s["rr"] for s in ans),
        "answer_acc": _mean(s["correct"] for s in ans),
        "cite_precision": round(sum(s["cites_supporting"] for s in ans) / cited, 4) if cited else None,
        "cite_median_chars": statistics.median(lengths) if lengths else None,
        "abstain_recall": _mean(s["abstained"] for s in unans),
        "false_abstain": _mean(s["abstained"] for s in ans),
        "latency_p50_ms": _pct(latencies, 0.5),
        "latency_p95_ms": _pct(latencies, 0.95),
    }
