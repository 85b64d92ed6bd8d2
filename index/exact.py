"""Brute-force NumPy search: the reference every FAISS index is measured and tested against."""

from __future__ import annotations

import numpy as np

__all__ = ["brute_force_search", "recall_at_k"]


def brute_force_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k, (scores, positions), ties broken by lower position like FAISS flat."""
    vectors = np.asarray(vectors, dtype=np.float32)
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    n = vectors.shape[0]
    k_eff = min(k, n)
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k_eff]
    top = np.take_along_axis(scores, order, axis=1)
    if k_eff < k:  # FAISS pads with -1 positions; mirror that so callers handle one shape
        pad = k - k_eff
        top = np.hstack([top, np.full((len(queries), pad), -np.inf, dtype=np.float32)])
        order = np.hstack([order, np.full((len(queries), pad), -1, dtype=np.int64)])
    return top.astype(np.float32), order.astype(np.int64)


def recall_at_k(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Share of the exact top-k positions that the approximate search also returned in its top-k."""
    hits = 0
    total = 0
    for a_row, e_row in zip(approx[:, :k], exact[:, :k]):
        truth = {int(p) for p in e_row if p >= 0}
        hits += len(truth & {int(p) for p in a_row if p >= 0})
        total += len(truth)
    return hits / total if total else 1.0
