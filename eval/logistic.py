"""Weighted logistic regression, the one estimator the decision's fits share.

>>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
>>> w = fit_logistic(X, y, np.ones(4), l2=0.1)
>>> bool(w[1] > 0)
True
>>> document_weights(np.array(["a", "a", "b"])).tolist()
[0.75, 0.75, 1.5]
"""

from __future__ import annotations

import numpy as np


def fit_logistic(X: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float, steps: int = 50) -> np.ndarray:
    """Weighted, L2-penalised logistic regression by Newton's method; [intercept, coefs...]."""
    A = np.hstack([np.ones((len(X), 1)), X])
    w = np.zeros(A.shape[1])
    penalty = np.eye(A.shape[1]) * l2
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(A @ w, -50, 50)))
        grad = A.T @ (weight * (p - y)) + penalty @ w
        hess = (A * (weight * p * (1 - p))[:, None]).T @ A + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def document_weights(doc: np.ndarray) -> np.ndarray:
    """Each row's weight so that every document weighs the same, averaging 1."""
    counts = {d: int((doc == d).sum()) for d in set(doc.tolist())}
    return np.array([1.0 / counts[d] for d in doc]) * len(doc) / len(counts)
