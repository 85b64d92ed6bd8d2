"""Evaluation of boxes, not only rankings: what a reader sees under an article, including when it should be short.

A ranking metric (nDCG) cannot see a box that always fills k slots with unrelated stories: on a real site most
stories have 0 to 3 follow-ups. These metrics look at the shown items of every box, over every labelled article
(also those with no related article at all, whose right box is empty):

* ``unrelated_shown@k``: the share of shown items (fallback items apart) that are unrelated (grade 0);
* ``boxes_with_unrelated@k``: the share of boxes showing at least one unrelated item;
* ``same_story_recall@k``: per article with same-story articles in the corpus, the share of them shown (mean);
* ``mean_box_length@k``, ``empty_boxes@k`` and the distribution of box lengths; ``fallback_shown@k``.

Systems that give scores (the engine's calibrated relevance, the baselines' cosines) are measured at a floor:
the engine at its own, each baseline at its best one (:func:`best_floor`, the same utility for everyone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import RecommenderError

__all__ = ["BoxItem", "best_floor", "box_metrics", "box_runs", "calibration", "floored"]


@dataclass(frozen=True)
class BoxItem:
    id: str
    score: float | None = None  # relevance or similarity; None when the system gives none
    fallback: bool = False


Runs = Mapping[str, Sequence[BoxItem]]


def box_runs(system: Any, queries: Iterable[str], k: int) -> dict[str, list[BoxItem]]:
    """Each query's box from ``system``: ``recommend_box`` (items with score and fallback flag), else
    ``recommend_scored`` (id, score), else ``recommend`` (ids). A query the system cannot answer gets an empty box."""
    out: dict[str, list[BoxItem]] = {}
    for query in queries:
        try:
            if hasattr(system, "recommend_box"):
                out[query] = list(system.recommend_box(query, k))
            elif hasattr(system, "recommend_scored"):
                out[query] = [BoxItem(i, float(s)) for i, s in system.recommend_scored(query, k)]
            else:
                out[query] = [BoxItem(i) for i in system.recommend(query, k)]
        except RecommenderError:
            out[query] = []
    return out


def floored(runs: Runs, floor: float | None) -> dict[str, list[BoxItem]]:
    """The boxes with items scoring under ``floor`` removed (unscored and fallback items are kept)."""
    if floor is None:
        return {q: list(items) for q, items in runs.items()}
    return {q: [i for i in items if i.fallback or i.score is None or i.score >= floor] for q, items in runs.items()}


def _grade(qrels: Mapping[str, Mapping[str, float]], query: str, item: str) -> float:
    return float(qrels.get(query, {}).get(item, 0.0))


def best_floor(
    runs: Runs, qrels: Mapping[str, Mapping[str, float]], grid: Sequence[float] | None = None
) -> float | None:
    """The floor maximising (related items shown) - (unrelated items shown) over all boxes: show an item when it is
    more likely related than not. None for a system without scores. Ties go to the lower floor."""
    scores = [i.score for items in runs.values() for i in items if i.score is not None and not i.fallback]
    if not scores:
        return None
    if grid is None:
        grid = sorted(set(np.quantile(scores, np.linspace(0, 1, 101)).round(6).tolist()) | {min(scores)})
    best, best_utility = None, -np.inf
    for floor in sorted(grid):  # ascending: a tie keeps the lower floor (shows more)
        utility = 0
        for query, items in runs.items():
            for item in items:
                if item.fallback or item.score is None or item.score < floor:
                    continue
                utility += 1 if _grade(qrels, query, item.id) > 0 else -1
        if utility > best_utility:
            best, best_utility = float(floor), utility
    return best


def box_metrics(
    runs: Runs,
    qrels: Mapping[str, Mapping[str, float]],
    k: int,
    *,
    corpus: Callable[[str], bool] = lambda _: True,
) -> dict[str, Any]:
    """The box metrics of ``runs`` (already floored), keyed ``name@k``. ``corpus(id)``: whether an article is in
    the evaluated corpus (same-story articles dropped from it cannot be found, so they do not count as missed)."""
    if not runs:
        return {}
    top = max((g for grades in qrels.values() for g in grades.values()), default=1.0)
    shown = unrelated = fallback = boxes_with_unrelated = 0
    lengths = []
    recalls = []
    for query, items in runs.items():
        items = list(items)[:k]
        lengths.append(len(items))
        related_items = [i for i in items if not i.fallback]
        fallback += len(items) - len(related_items)
        bad = sum(1 for i in related_items if _grade(qrels, query, i.id) <= 0)
        shown += len(related_items)
        unrelated += bad
        boxes_with_unrelated += bad > 0
        story = {d for d, g in qrels.get(query, {}).items() if g >= top and d != query and corpus(d)}
        if story:
            recalls.append(len(story & {i.id for i in related_items}) / len(story))
    n = len(runs)
    hist = np.bincount(lengths, minlength=k + 1)
    return {
        f"unrelated_shown@{k}": unrelated / shown if shown else 0.0,
        f"boxes_with_unrelated@{k}": boxes_with_unrelated / n,
        f"same_story_recall@{k}": float(np.mean(recalls)) if recalls else None,
        f"mean_box_length@{k}": float(np.mean(lengths)),
        f"empty_boxes@{k}": float(np.mean(np.asarray(lengths) == 0)),
        f"fallback_shown@{k}": fallback / (shown + fallback) if shown + fallback else 0.0,
        "box_lengths": {str(length): int(count) for length, count in enumerate(hist.tolist())},
        "boxes": n,
        "queries_with_same_story": len(recalls),
    }


def calibration(runs: Runs, qrels: Mapping[str, Mapping[str, float]], bins: int = 10) -> dict[str, Any] | None:
    """How well scores that claim to be probabilities (calibrated relevance) match the observed share of related
    items: a reliability table in ``bins`` equal-width bins, the expected calibration error and the Brier score."""
    pairs = [
        (float(i.score), 1.0 if _grade(qrels, q, i.id) > 0 else 0.0)
        for q, items in runs.items()
        for i in items
        if i.score is not None and not i.fallback
    ]
    if not pairs:
        return None
    p, y = np.asarray(pairs).T
    return reliability(p, y, bins)


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Predicted probabilities ``p`` against outcomes ``y`` (0/1): the reliability table in ``bins`` equal-width
    bins, the expected calibration error (ECE) and the Brier score."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    table = []
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            predicted, observed = float(p[mask].mean()), float(y[mask].mean())
            ece += abs(predicted - observed) * mask.sum() / len(p)
            table.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": int(mask.sum()),
                          "predicted": round(predicted, 4), "observed": round(observed, 4)})  # fmt: skip
    return {
        "pairs": len(p),
        "ece": round(float(ece), 4),
        "brier": round(float(np.mean((p - y) ** 2)), 4),
        "bins": table,
    }
