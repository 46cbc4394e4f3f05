"""Fit the question prior of the answer decision (`rag.decision.QuestionPrior`).

Some questions are seldom answered by any text, whatever it holds: what
someone felt, a price nobody quotes, the capital of Australia. The prior
reads that from the question's vector alone, a logistic model fitted on the
training documents' labelled questions, each document weighing the same. It
is one feature of the decision, beside what the retrieval found (`lift`), so
it shifts a verdict rather than making one.

Fitted split by document, like everything the decision learns: a training
question's `prior` value comes from a fit without its document, so the
decision weighs the prior as it will meet it on a new text, and the penalty
is the one of `L2S` with the best mean AUROC over left-out documents.

>>> rng = np.random.default_rng(0)
>>> V, doc = rng.normal(size=(60, 4)), np.repeat(["a", "b", "c"], 20)
>>> fit = fit_prior(V, V[:, 0] > 0, doc)
>>> fit.prior.logit(np.array([2.0, 0, 0, 0])) > fit.prior.logit(np.array([-2.0, 0, 0, 0])) and fit.l2 in L2S
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.decision import QuestionPrior

from .logistic import document_weights, fit_logistic
from .metrics import auroc

L2S = (100.0, 300.0, 1000.0, 3000.0)  # penalties tried; the vector has hundreds of weights


@dataclass(frozen=True)
class PriorFit:
    prior: QuestionPrior  # fitted on every training document
    out_of_document: np.ndarray  # each training question's logit from a fit without its document
    l2: float
    auroc: float  # mean over the documents of the out-of-document logits' AUROC


def _fit(V: np.ndarray, y: np.ndarray, doc: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Raw-unit weights and intercept: fitted on standardised vectors, then folded back."""
    mean, scale = V.mean(axis=0), V.std(axis=0)
    scale[scale == 0] = 1.0
    w = fit_logistic((V - mean) / scale, y.astype(float), document_weights(doc), l2)
    coef = w[1:] / scale
    return coef, float(w[0] - coef @ mean)


def out_of_document(V: np.ndarray, y: np.ndarray, doc: np.ndarray, l2: float) -> np.ndarray:
    logits = np.zeros(len(y))
    for d in sorted(set(doc.tolist())):
        held = doc == d
        coef, b = _fit(V[~held], y[~held], doc[~held], l2)
        logits[held] = V[held] @ coef + b
    return logits


def fit_prior(V: np.ndarray, y: np.ndarray, doc: np.ndarray, l2s: tuple[float, ...] = L2S) -> PriorFit:
    """The prior of the best penalty, and its out-of-document logits."""
    docs = sorted(set(doc.tolist()))

    def mean_auroc(logits: np.ndarray) -> float:
        return float(np.mean([auroc(logits[doc == d].tolist(), y[doc == d].tolist()) for d in docs]))

    tried = [(mean_auroc(oof := out_of_document(V, y, doc, l2)), -l2, oof) for l2 in l2s]
    score, neg_l2, oof = max(tried, key=lambda t: (t[0], t[1]))
    coef, b = _fit(V, y, doc, -neg_l2)
    prior = QuestionPrior(tuple(round(float(c), 6) for c in coef), round(b, 6), round(float(oof.mean()), 6))
    return PriorFit(prior, np.round(oof, 6), -neg_l2, round(score, 4))
