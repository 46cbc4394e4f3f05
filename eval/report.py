"""Tables, `report.md`, `report.json` and the bar chart of an `Evaluation`.

`table` renders summaries as aligned text (stdout) or Markdown (the report);
`write_report` writes the three files into one folder; `chart` draws the main
metrics per configuration with matplotlib's Agg backend (no display needed).

>>> print(table({"ours": {"n": 2, "hit@1": 0.5, "latency_p50_ms": 3.25}}, columns=("n", "hit@1", "latency_p50_ms")))
config  n  hit@1  p50 ms
ours    2  0.500     3.2
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rag.config import REPO, Settings

from .runner import DESCRIPTIONS, Evaluation

HEADERS = {
    "n": "n",
    "hit@1": "hit@1",
    "hit@3": "hit@3",
    "hit@5": "hit@5",
    "mrr": "MRR",
    "answer_acc": "answer acc",
    "cite_precision": "cite prec",
    "cite_median_chars": "cite chars",
    "abstain_recall": "abstain rec",
    "false_abstain": "false abst",
    "decision_auroc": "AUROC",
    "cross_document": "cross-doc",
    "in_lang": "in lang",
    "latency_p50_ms": "p50 ms",
    "latency_p95_ms": "p95 ms",
}
COLUMNS = tuple(HEADERS)
CHART_METRICS = ("hit@1", "hit@3", "mrr", "answer_acc", "cite_precision", "abstain_recall", "false_abstain")
VERDICT_WORDS = {"abstained": "abstained", "wrong": "wrong", "answered": "answered", "error": "error"}


def _cell(metric: str, value: object) -> str:
    if value is None:
        return "–"
    if metric.startswith("latency"):
        return f"{value:.1f}"
    if metric in ("n", "cite_median_chars"):
        return f"{value:g}"
    return f"{value:.3f}"


def table(
    summaries: dict[str, dict], columns: Sequence[str] = COLUMNS, markdown: bool = False, first: str = "config"
) -> str:
    """One row per key of `summaries` (a config, or "group · config")."""
    head = [first, *(HEADERS[c] for c in columns)]
    body = [[name, *(_cell(c, s.get(c)) for c in columns)] for name, s in summaries.items()]
    if markdown:
        lines = [head, ["---"] + ["---:"] * len(columns), *body]
        return "\n".join("| " + " | ".join(row) + " |" for row in lines)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    fmt = [str.ljust] + [str.rjust] * len(columns)
    return "\n".join(
        "  ".join(f(cell, w) for f, cell, w in zip(fmt, row, widths, strict=True)).rstrip() for row in [head, *body]
    )


def grouped(evaluation: Evaluation, by: str) -> dict[str, dict]:
    """Summaries keyed "group · config", groups outermost, for `table`."""
    out: dict[str, dict] = {}
    groups = sorted({g for s in evaluation.summaries.values() for g in s[by]})
    for group in groups:
        for name, s in evaluation.summaries.items():
            if group in s[by]:
                out[f"{group} · {name}"] = s[by][group]
    return out


def tables(evaluation: Evaluation, markdown: bool = False) -> str:
    """Overall, per-language, per-kind and (for questions that name their
    `source`) per-document tables, as printed and reported."""
    parts = [("Overall", {n: s["overall"] for n, s in evaluation.summaries.items()}, "config")]
    parts += [("By language", grouped(evaluation, "by_lang"), "lang · config")]
    parts += [("By kind", grouped(evaluation, "by_kind"), "kind · config")]
    parts += [("By document", grouped(evaluation, "by_source"), "document · config")]
    out = []
    for title, summaries, first in parts:
        if summaries:
            heading = f"## {title}" if markdown else f"{title}:"
            out.append(f"{heading}\n\n{table(summaries, markdown=markdown, first=first)}")
    return "\n\n".join(out)


def misses(evaluation: Evaluation) -> list[dict]:
    """The scored questions some configuration got wrong, with each one's verdict."""
    out = []
    for i, q in enumerate(evaluation.questions):
        verdicts = {name: s[i].get("verdict", "ok") for name, s in evaluation.scores.items()}
        if q.scored and any(v != "ok" for v in verdicts.values()):
            out.append({"id": q.item["id"], "item": q.item, "verdicts": verdicts})
    return out


def git_commit() -> str:
    """The checked-out commit, marked when tracked files have uncommitted changes."""
    try:
        run = {"cwd": REPO, "capture_output": True, "text": True, "timeout": 10, "check": True}
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


def _fit(settings: Settings) -> str:
    """Which fitted e5 vectors the run read with (rag.e5tuned), for the report."""
    from rag.embedding import tuned_vectors
    from rag.folders import sha256_file

    path = tuned_vectors(settings)
    return f", fitted {path.name} {sha256_file(path)[:12]}" if path and path.is_file() else ""


def metadata(settings: Settings, source: str, command: str, extra: dict) -> dict:
    """Date, commit, command and the configuration the numbers belong to."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "command": command,
        "question_file": source,
        "embedder": f"{settings.embedder} ({settings.embed_model}{_fit(settings)})",
        "settings": {k: getattr(settings, k) for k in ("retrieval", "top_k", "retrieve_k", "chunk_size", "chunk_min")},
        "machine": f"{platform.platform()}, Python {platform.python_version()}, {_cpus()} CPUs",
        **extra,
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write_report(
    evaluation: Evaluation, meta: dict, folder: Path, problems: Sequence[str] = (), stem: str = "report"
) -> list[Path]:
    """Write `<stem>`.md, .json and .png into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{stem}.png"
    chart(evaluation, png, title=f"{meta['question_file']} · {meta['embedder']}")
    (folder / f"{stem}.md").write_text(markdown_report(evaluation, meta, png.name, problems), encoding="utf-8")
    data = {
        **meta,
        "problems": list(problems),
        "configs": {name: {"description": _describe(name, meta), **s} for name, s in evaluation.summaries.items()},
        "questions": [
            {
                "id": q.item["id"],
                "line": q.line,
                **{k: q.item[k] for k in ("lang", "kind", "answerable") if k in q.item},
                "results": {
                    name: {k: s[i].get(k) for k in ("verdict", "rank", "abstained", "latency_ms") if k in s[i]}
                    for name, s in evaluation.scores.items()
                },
            }
            for i, q in enumerate(evaluation.questions)
        ],
    }
    (folder / f"{stem}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return [folder / f"{stem}.md", folder / f"{stem}.json", png]


def _counts(evaluation: Evaluation) -> str:
    """'98 questions: 80 answerable, 18 unanswerable' (plus unscored ones, if any)."""
    overall = next(iter(evaluation.summaries.values()))["overall"]
    unscored = overall["n"] - overall["answerable"] - overall["unanswerable"]
    text = f"{overall['n']} questions: {overall['answerable']} answerable, {overall['unanswerable']} unanswerable"
    return text + (f", {unscored} without gold fields" if unscored else "")


def _describe(name: str, meta: dict) -> str:
    return DESCRIPTIONS.get(name, name).format(retrieval=meta["settings"]["retrieval"])


def markdown_report(evaluation: Evaluation, meta: dict, png: str, problems: Sequence[str] = ()) -> str:
    lines = [
        "# Evaluation report",
        "",
        f"Generated by `{meta['command']}`; the numbers below are that run's.",
        "",
        *(f"- **{k}**: {meta[k]}" for k in ("date", "commit", "embedder", "machine")),
        f"- **questions**: {meta['question_file']} ({_counts(evaluation)})",
        f"- **settings**: {', '.join(f'{k} {v}' for k, v in meta['settings'].items())}",
        "",
        "Configurations (same questions, same machine; plain LangChain reads with e5 as shipped):",
        "",
        *(f"- `{name}`: {_describe(name, meta)}" for name in evaluation.summaries),
        "",
        "Metric definitions: see `eval/README.md` (section Runner). hit@k and MRR are over the citation list;",
        "answer acc needs every `answer_keys` group in a non-abstaining answer.",
        "",
        tables(evaluation, markdown=True),
        "",
        f"![Main metrics per configuration]({png})",
        "",
        *_problem_lines(problems),
        *_miss_lines(evaluation),
    ]
    return "\n".join(lines).rstrip() + "\n"


def publish(evaluation: Evaluation, meta: dict, folder: Path, stem: str) -> Path:
    """The run's summary tables as `<stem>-<date>.md` in `folder`: the file
    committed on purpose for a released measurement. No per-question lines, so
    publishing a held-out set reveals no miss."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}-{meta['date'][:10]}.md"
    lines = [
        f"# Evaluation summary: {meta['question_file']}",
        "",
        f"Generated by `{meta['command']}`.",
        "",
        *(f"- **{k}**: {meta[k]}" for k in ("date", "commit", "embedder", "machine")),
        f"- **questions**: {_counts(evaluation)}",
        "",
        tables(evaluation, markdown=True),
    ]
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def _problem_lines(problems: Sequence[str]) -> list[str]:
    if not problems:
        return []
    return ["## Input problems", "", *(f"- {p}" for p in problems), ""]


def _miss_lines(evaluation: Evaluation) -> list[str]:
    missed = misses(evaluation)
    names = list(evaluation.scores)
    counts = ", ".join(f"`{n}` {sum(m['verdicts'][n] != 'ok' for m in missed)}" for n in names)
    lines = [
        "## Missed questions",
        "",
        f"Questions at least one configuration missed ({len(missed)}; per configuration: {counts}).",
        "A blank cell is a correct answer (or a correct abstention); *abstained* = abstained on an answerable",
        "question, *wrong* = answered without every key fact, *answered* = answered an unanswerable question.",
        "",
        "| id | lang | kind | question | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    for m in missed:
        item = m["item"]
        question = item["question"].replace("|", "\\|")
        cells = [VERDICT_WORDS.get(m["verdicts"][n], "") for n in names]
        lines.append(
            f"| {item['id']} | {item.get('lang', '')} | {item.get('kind', '')} | {question} | {' | '.join(cells)} |"
        )
    return lines


def chart(evaluation: Evaluation, path: Path, title: str = "") -> None:
    """Grouped bars: one group per main metric, one bar per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(evaluation.summaries)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=110)
    for j, name in enumerate(names):
        overall = evaluation.summaries[name]["overall"]
        values = [overall.get(m) for m in CHART_METRICS]
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(CHART_METRICS))]
        bars = ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=name)
        labels = [f"{v:.2f}" if v is not None else "n/a" for v in values]
        ax.bar_label(bars, labels=labels, fontsize=6.5, padding=1)
    ax.set_xticks(
        range(len(CHART_METRICS)), [HEADERS[m] + (" ↓" if m == "false_abstain" else "") for m in CHART_METRICS]
    )
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("share (higher is better, ↓ lower)")
    ax.set_title(title, fontsize=9)
    ax.legend(ncols=len(names), loc="upper center", fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
