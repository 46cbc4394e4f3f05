"""Fit the answer decision (`rag/decision.json`) on labelled questions, split by document.

For every training document it builds the pipeline as `python -m eval` does
(the letter on `index/`, each answered without its own worked example; every
other corpus on a private index, see `--corpus`), reads the decision's
features (`rag.decision.features`) for each question and fits a logistic
model, answerable or not, with each document weighing the same, on the
features that help on a document left out of the fit (forward selection). The
threshold is the one that declines the most unanswerable training questions
while declining at most `--max-false` of the answerable ones (averaged over
the documents). Deterministic: the same data give the same file.

    python -m eval.fit_decision                 # the default split; writes rag/decision.json
    python -m eval.fit_decision --out /tmp/d.json --corpus corpora/ferrypix-photo-sync
    python -m eval.fit_decision --examples eval/questions.jsonl   # writes eval/questions.jsonl.decision.json

`--examples FILE` fits one corpus's own decision on its worked examples
instead (`eval.fit_examples`).

Keep test documents out of `--corpus`: the corpora not named here, and the
works of Lu Xun, are what the decision is judged on.

The question prior (`eval.fit_prior`) is fitted first, on the questions'
vectors, and each training question's `prior` feature is its value from a
fit without that question's document; it joins the model only if forward
selection takes it.

>>> data = {d: [(Features(lift=x + d), x > 1) for x in range(-3, 6)] for d in range(3)}
>>> model = fit(data, l2=1.0, max_false=0.05)
>>> model.features, model.decide(Features(lift=5.0)).abstained, model.decide(Features(lift=-3.0)).abstained
(('lift',), False, True)
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag.config import REPO, Settings
from rag.decision import MODEL, DecisionModel, Features, detect_lang, features, save_model

from .fit_prior import L2S, PriorFit, fit_prior
from .logistic import document_weights, fit_logistic
from .metrics import auroc

# Training documents: the letter's dev set and twenty-four corpora, twelve per
# language, in pairs of one language so `eval.fit_embedder.folds_of` deals both
# into each fold (corpora/README.md); the other corpora (and the letter's
# held-out sets) test.
TRAIN = (
    "corpora/db-backup-migration-pgbackrest",
    "corpora/hairspring-watch-shop",
    "corpora/ferrypix-photo-sync",
    "corpora/ardnish-point-lighthouse",
    "corpora/community-waste-sorting-notice",
    "corpora/pottery-studio-interview",
    "corpora/stone-bridge-county-history",
    "corpora/urban-heat-island-study",
    "corpora/coastal-path-hiking-diary",
    "corpora/harbour-cup-final-report",
    "corpora/pedalshare-rental-faq",
    "corpora/sourdough-starter-guide",
    "corpora/family-recipe-braised-pork",
    "corpora/e-reader-product-review",
    "corpora/lighthouse-keepers-play-scene",
    "corpora/glaciologist-biography-sketch",
    "corpora/apartment-lease-rules",
    "corpora/night-market-short-story",
    "corpora/office-move-email-thread",
    "corpora/swift-migration-study",
    "corpora/clinic-outpatient-guide",
    "corpora/cycling-forum-thread",
    "corpora/canal-history-lecture",
    "corpora/village-baker-obituary",
)
L2 = 1.0
# Features whose larger values mean, by construction, a question further from
# the text: the gap by which an everyday question is closer to it than the
# text's best sentence is. Above the largest any answerable training question
# showed, a question is declined whatever the score says (`DecisionModel.ceilings`).
CEILINGS = ("offtopic",)
MAX_FALSE = 0.05


def rows_for(
    settings: Settings, questions: Path, leave_out_asked: bool
) -> tuple[list[tuple[Features, bool]], np.ndarray]:
    """Each question's features and whether it is answerable; and its query vectors, one row each."""
    from rag.conversation import contextual_query
    from rag.pipeline import Pipeline

    from .runner import load_questions

    pipe = Pipeline.load(settings, say=lambda _m: None, leave_out_asked=leave_out_asked)
    good, problems = load_questions(questions, settings.max_question_chars)
    if problems:
        raise ValueError("\n".join(problems))
    out, vectors = [], []
    for q in good:
        text, history = q.item["question"], q.item.get("history", [])
        found = pipe.retriever.search(contextual_query(text, history), text)
        out.append((features(found, detect_lang(text), settings.top_k), bool(q.item["answerable"])))
        vectors.append(found.query_vector)
    return out, np.array(vectors, dtype=np.float32)


def choose_threshold(p: np.ndarray, y: np.ndarray, doc: np.ndarray, max_false: float) -> float:
    """The threshold that declines most unanswerable questions (mean over documents)
    while declining at most `max_false` of the answerable ones (mean over documents)."""
    docs = sorted(set(doc.tolist()))

    def rates(t: float) -> tuple[float, float]:
        false = [float(np.mean(p[(doc == d) & y] < t)) for d in docs if ((doc == d) & y).any()]
        caught = [float(np.mean(p[(doc == d) & ~y] < t)) for d in docs if ((doc == d) & ~y).any()]
        return float(np.mean(false)), float(np.mean(caught))

    best_t, best = 0.0, -1.0
    for t in np.unique(np.round(p, 4)):
        false, caught = rates(float(t))
        if false <= max_false and caught > best:
            best_t, best = float(t), caught
    return best_t


def collect(
    settings: Settings, corpora: list[Path], folds: Path | None = None
) -> tuple[dict[str, list[tuple[Features, bool]]], dict[str, np.ndarray]]:
    """Each training document's rows and query vectors; with `folds`
    (eval.fit_embedder --folds), each read through the fitted e5 that did not see it."""
    from .__main__ import corpus_settings
    from .fit_embedder import fold_settings, letter_settings

    letter = REPO / "eval" / "questions.jsonl"
    parts = {}
    if folds is None:
        parts["eval/questions.jsonl"] = rows_for(settings, letter, True)
    else:
        with tempfile.TemporaryDirectory(prefix="rag-fit-") as tmp:
            parts["eval/questions.jsonl"] = rows_for(letter_settings(settings, folds, Path(tmp)), letter, True)
    for corpus in corpora:
        with tempfile.TemporaryDirectory(prefix="rag-fit-") as tmp:
            here = fold_settings(settings, folds, corpus.as_posix()) if folds else settings
            private = corpus_settings(here, corpus, Path(tmp))
            parts[corpus.as_posix()] = rows_for(private, corpus / "questions.jsonl", False)
    return {d: rows for d, (rows, _) in parts.items()}, {d: v for d, (_, v) in parts.items()}


def arrays(data: dict, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The features `names` of every row (none: zero columns), the labels, each row's document."""
    y = np.array([label for rows in data.values() for _, label in rows])
    doc = np.array([d for d, rows in data.items() for _ in rows])
    X = np.array([[asdict(f)[n] for n in names] for rows in data.values() for f, _ in rows], dtype=float)
    return X.reshape(len(y), len(names)), y, doc


def fit_scaled(X: np.ndarray, y: np.ndarray, doc: np.ndarray, l2: float):
    """Standardisation and weights, each document weighing the same; and a scorer."""
    weight = document_weights(doc)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    w = fit_logistic((X - mean) / scale, y.astype(float), weight, l2)

    def prob(Z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(w[0] + ((Z - mean) / scale) @ w[1:], -50, 50)))

    return mean, scale, w, prob


def held_out_auroc(data: dict, names: list[str], l2: float) -> float:
    """Mean AUROC over the documents, each scored by a model fitted without it."""
    X, y, doc = arrays(data, names)
    out = []
    for test in data:
        *_, prob = fit_scaled(X[doc != test], y[doc != test], doc[doc != test], l2)
        out.append(auroc(prob(X[doc == test]).tolist(), y[doc == test].tolist()))
    return float(np.mean(out))


def select_features(data: dict, l2: float, gain: float = 0.005) -> tuple[list[str], list]:
    """Forward selection on leave-one-document-out AUROC: a feature joins only
    when it helps on documents the model was not fitted on."""
    chosen: list[str] = []
    best, trace = 0.5, []
    candidates = [f.name for f in fields(Features)]
    while candidates:
        score, name = max((held_out_auroc(data, [*chosen, c], l2), c) for c in candidates)
        if score < best + gain:
            break
        chosen.append(name)
        candidates.remove(name)
        best = score
        trace.append([name, round(score, 4)])
    return chosen, trace


def frozen(names, mean, scale, w: np.ndarray, threshold: float, header: dict) -> DecisionModel:
    """The fitted numbers as the saved model holds them (rounded, so a refit on
    the same data writes the same file)."""
    return DecisionModel(
        tuple(names), *(tuple(round(float(v), 6) for v in a) for a in (mean, scale, w[1:])),
        round(float(w[0]), 6), round(threshold, 4), header,
    )  # fmt: skip


def with_prior(
    data: dict[str, list[tuple[Features, bool]]], vectors: dict[str, np.ndarray]
) -> tuple[dict[str, list[tuple[Features, bool]]], PriorFit]:
    """`data` with each question's `prior` from a fit without its document, and the prior's fit."""
    _, y, doc = arrays(data, [])
    fitted = fit_prior(np.concatenate([vectors[d] for d in data]), y, doc)
    values = iter(fitted.out_of_document.tolist())
    return {d: [(replace(f, prior=next(values)), label) for f, label in rows] for d, rows in data.items()}, fitted


def fit(
    data: dict[str, list[tuple[Features, bool]]],
    l2: float,
    max_false: float,
    vectors: dict[str, np.ndarray] | None = None,
) -> DecisionModel:
    """The decision over the features that help on a left-out document; with
    `vectors` (each document's query vectors), the question prior is one of them."""
    prior = None
    if vectors is not None:
        data, prior = with_prior(data, vectors)
    names, trace = select_features(data, l2)
    X, y, doc = arrays(data, names)
    mean, scale, w, prob = fit_scaled(X, y, doc, l2)
    ceilings = fit_ceilings(data)
    p = np.where(_over(data, ceilings), 0.0, prob(X))
    threshold = choose_threshold(p, y, doc, max_false)
    header = {
        "fitted_by": "python -m eval.fit_decision",
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained_on": {d: {"questions": len(r), "answerable": sum(lab for _, lab in r)} for d, r in data.items()},
        "settings": {"l2": l2, "max_false": max_false, "document_weighting": "equal", "seed": None},
        "training_auroc": {d: auroc(p[doc == d].tolist(), y[doc == d].tolist()) for d in data},
        "feature_selection": {"by": "leave-one-document-out AUROC, forward", "steps": trace},
        "ceilings_fitted": {"features": list(CEILINGS), "value": "the largest an answerable training question had"},
    }
    if prior is not None:
        header["prior_fitted"] = {
            "by": "eval.fit_prior",
            "l2": prior.l2,
            "l2_tried": list(L2S),
            "leave_one_document_out_auroc": prior.auroc,
            "vector": "the query as searched",
        }
    used = prior.prior if prior is not None and "prior" in names else None
    return replace(frozen(names, mean, scale, w, threshold, header), ceilings=ceilings, prior=used)


def fit_ceilings(data: dict[str, list[tuple[Features, bool]]]) -> dict[str, float]:
    """For each of `CEILINGS`, the largest value an answerable training question had (rounded up)."""
    return {
        name: math.ceil(max(asdict(f)[name] for rows in data.values() for f, label in rows if label) * 1e4) / 1e4
        for name in CEILINGS
    }


def _over(data: dict, ceilings: dict[str, float]) -> np.ndarray:
    """Which training rows some ceiling declines."""
    return np.array([any(asdict(f)[n] > c for n, c in ceilings.items()) for rows in data.values() for f, _ in rows])


def main(argv: list[str] | None = None) -> int:
    from .fit_embedder import read_with

    ap = argparse.ArgumentParser(prog="python -m eval.fit_decision", description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, action="append", help="a training corpus folder (repeatable)")
    ap.add_argument("--out", type=Path, help="default rag/decision.json (FILE.decision.json with --examples)")
    ap.add_argument("--l2", type=float, default=L2)
    ap.add_argument("--max-false", type=float, default=MAX_FALSE)
    ap.add_argument("--examples", type=Path, help="fit one corpus's decision on this worked-examples file")
    ap.add_argument("--embedder-folds", type=Path, help="read each document through the e5 fit without it")
    args = ap.parse_args(argv)
    if args.examples:
        from .fit_examples import main_examples

        return main_examples(args.examples, args.l2, args.max_false, args.out, args.embedder_folds)
    corpora = args.corpus or [REPO / c for c in TRAIN]
    settings = Settings.from_env(llm_base_url="", llm_model="")
    corpora = [c.relative_to(REPO) if c.is_absolute() else c for c in corpora]
    data, vectors = collect(settings, corpora, args.embedder_folds)
    model = fit(data, args.l2, args.max_false, vectors)
    model.header["read_with"] = read_with(settings, args.embedder_folds)
    save_model(model, args.out or MODEL)
    for name, c in zip(model.features, model.coef, strict=True):
        print(f"{name:>18} {c:+.3f}")
    print(f"{'intercept':>18} {model.intercept:+.3f}   threshold {model.threshold}")
    print("training AUROC:", model.header["training_auroc"], file=sys.stderr)
    print(f"Wrote {args.out or MODEL}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
