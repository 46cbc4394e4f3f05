"""Calibrate the abstention threshold on a question set (default: ours).

For each language it prints the best-sentence cosine of answerable and
unanswerable questions, the highest threshold that keeps false abstentions
at or under `--max-false` by cosine alone, and what the pipeline's whole rule
(`rag.answer.decide`: that threshold, the answer-type checks and the
every-word override) decides at the current setting.

    python -m eval.calibrate --questions eval/questions.jsonl --max-false 0.05
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval.runner import load_questions
from rag.answer import compose
from rag.config import Settings
from rag.conversation import contextual_query
from rag.pipeline import Pipeline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=Path, default=Path(__file__).with_name("questions.jsonl"))
    ap.add_argument("--max-false", type=float, default=0.05)
    ap.add_argument("--embedder", default=None)
    args = ap.parse_args(argv)
    # as in `python -m eval`: a dev question does not look up its own worked example
    pipe = Pipeline.load(Settings.from_env(embedder=args.embedder), leave_out_asked=True)
    questions, problems = load_questions(args.questions, pipe.settings.max_question_chars)
    for problem in problems:
        print(problem, file=sys.stderr)
    rows, whole = [], []
    for q in (q.item for q in questions if q.scored):
        text = q["question"]
        found = pipe.retriever.search(contextual_query(text, q.get("history", [])), text)
        answer = compose(text, found, pipe.index.sentence_views[0], pipe.policy)  # the pipeline's own decision
        lang = q.get("lang") or answer.lang
        rows.append((lang, bool(q["answerable"]), found.best_sentence))
        whole.append((lang, bool(q["answerable"]), answer.abstained))
    for lang in sorted({r[0] for r in rows}):
        ans = sorted(s for ln, a, s in rows if ln == lang and a)
        unans = sorted(s for ln, a, s in rows if ln == lang and not a)
        allowed = int(args.max_false * len(ans))
        threshold = ans[allowed] if ans else 0.0
        caught = sum(s < threshold for s in unans)
        print(
            f"{lang}: answerable {len(ans)} (lowest {ans[:4]}), unanswerable {len(unans)} "
            f"(scores {[round(s, 3) for s in unans]})"
        )
        print(
            f"{lang}: threshold {threshold:.3f} abstains on {caught}/{len(unans)} unanswerable, "
            f"{allowed}/{len(ans)} answerable"
        )
        caught = sum(ab for ln, a, ab in whole if ln == lang and not a)
        false = sum(ab for ln, a, ab in whole if ln == lang and a)
        print(f"{lang}: the current rule abstains on {caught}/{len(unans)} unanswerable, {false}/{len(ans)} answerable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
