"""Fit one corpus's own answer decision on its worked examples (`FILE.decision.json`).

`python -m eval.fit_decision --examples FILE` reads the corpus's labelled
questions over the project's index, each answered without its own example
(rag.examples), and fits a logistic model over every feature but the
question prior, with a threshold chosen on scores out of fold (`FOLDS`), so
the false abstentions it allows are those of questions the fit did not see.
The pipeline uses it while that file is unchanged, for answers from the
documents the examples are about (rag.decision.examples_model, rag.answer.decide).

>>> rows = [(Features(lift=x / 4), x > 8) for x in range(40)]
>>> model = fit_examples(rows, l2=1.0, max_false=0.05)
>>> model.decide(Features(lift=9.0)).abstained, model.decide(Features(lift=0.0)).abstained
(False, True)
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag.config import REPO, Settings
from rag.decision import DecisionModel, Features, examples_model_path, save_model

from .fit_decision import arrays, choose_threshold, fit_scaled, frozen, rows_for
from .metrics import auroc

FOLDS = 5
# The question prior is left out: the general one was fitted on questions like
# these (the letter's dev set is among its data), so here it would look better than it is.
NOT_IN_EXAMPLES = ("prior",)


def fit_examples(rows: list[tuple[Features, bool]], l2: float, max_false: float, folds: int = FOLDS) -> DecisionModel:
    """One corpus's decision from its own labelled questions: a logistic model
    over every feature, its threshold chosen on out-of-fold scores (question i
    in fold i % `folds`, so the same file gives the same model)."""
    names = [f.name for f in fields(Features) if f.name not in NOT_IN_EXAMPLES]
    X, y, doc = arrays({"examples": rows}, names)
    fold = np.arange(len(y)) % folds
    held = np.zeros(len(y))
    for k in range(folds):
        *_, prob = fit_scaled(X[fold != k], y[fold != k], doc[fold != k], l2)
        held[fold == k] = prob(X[fold == k])
    mean, scale, w, _ = fit_scaled(X, y, doc, l2)
    threshold = choose_threshold(held, y, doc, max_false)
    header = {
        "fitted_by": "python -m eval.fit_decision --examples",
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {"l2": l2, "max_false": max_false, "folds": folds, "threshold_on": "out-of-fold scores"},
        "out_of_fold_auroc": auroc(held.tolist(), y.tolist()),
    }
    return frozen(names, mean, scale, w, threshold, header)


def main_examples(
    examples: Path, l2: float, max_false: float, out: Path | None = None, folds: Path | None = None
) -> int:
    from rag.examples import examples_sha256
    from rag.seeds import seed_hashes

    from .fit_embedder import letter_settings, read_with

    settings = Settings.from_env(llm_base_url="", llm_model="", examples=examples)
    if folds is None:
        rows, _ = rows_for(settings, examples, leave_out_asked=True)
    else:
        with tempfile.TemporaryDirectory(prefix="rag-fit-") as tmp:
            rows, _ = rows_for(letter_settings(settings, folds, Path(tmp)).with_(examples=examples), examples, True)
    model = fit_examples(rows, l2, max_false)
    name = examples.resolve().relative_to(REPO).as_posix() if examples.resolve().is_relative_to(REPO) else str(examples)
    model.header.update(
        read_with=read_with(settings, folds),
        trained_on={name: {"questions": len(rows), "answerable": sum(label for _, label in rows)}},
        examples_sha256=examples_sha256(examples),
        seeds=seed_hashes(settings.seeds_dir),
    )
    out = out or examples_model_path(examples)
    save_model(model, out)
    print(f"out-of-fold AUROC {model.header['out_of_fold_auroc']}, threshold {model.threshold}", file=sys.stderr)
    print(f"Wrote {out}", file=sys.stderr)
    return 0
