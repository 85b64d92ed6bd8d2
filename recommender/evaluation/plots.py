"""Evaluation plots: metric@k curves, per-query differences, score distributions (PNG, matplotlib's Agg canvas).

Drawn on :class:`matplotlib.figure.Figure`, never through pyplot, so writing a report from a notebook does not
change its plotting backend.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import EvaluationResult

__all__ = [
    "LABELS",
    "PLOT_FILES",
    "new_figure",
    "plot_curves",
    "plot_differences",
    "plot_distributions",
    "plot_reliability",
]

PLOT_FILES = {
    "curves": "curves.png",
    "differences": "differences.png",
    "distributions": "distributions.png",
    "reliability": "reliability.png",
}
LABELS = {
    "ndcg": "nDCG",
    "precision": "Precision",
    "recall": "Recall",
    "mrr": "MRR",
    "map": "MAP",
    "hit_rate": "Hit rate",
}


def new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_curves(result: EvaluationResult, path: str | Path) -> Path:
    """Mean metric@k for k in ``result.curve_ks``, one panel per metric, one line per system."""
    names = list(result.curves[result.baseline])
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = new_figure(4.2 * columns, 3.2 * rows)
    for index, name in enumerate(names):
        axis = figure.add_subplot(rows, columns, index + 1)
        for number, system in enumerate(result.systems):
            points = sorted(result.curves[system][name].items())
            style = ("-", "--", ":", "-.")[number % 4]  # systems with equal curves stay visible
            axis.plot(
                [k for k, _ in points], [v for _, v in points], linestyle=style, marker="o", markersize=3, label=system
            )
        axis.set_title(f"{LABELS.get(name, name)}@k")
        axis.set_xlabel("k")
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
        if index == 0:
            axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def plot_differences(result: EvaluationResult, path: str | Path, metric: str | None = None) -> Path | None:
    """Per-query ``system - baseline`` on ``metric`` (default: headline), sorted: where a system wins and loses.

    Returns None when there is only one system (nothing to compare).
    """
    metric = metric or result.headline_metric
    others = [s for s in result.systems if s != result.baseline]
    if not others:
        return None
    figure = new_figure(9, 2.6 * len(others))
    base = result.per_query[result.baseline]
    for index, system in enumerate(others):
        axis = figure.add_subplot(len(others), 1, index + 1)
        diffs = sorted(result.per_query[system][q][metric] - base[q][metric] for q in result.queries)
        xs = range(len(diffs))
        colors = ["#2a9d8f" if d > 0 else "#e76f51" if d < 0 else "#999999" for d in diffs]
        if len(diffs) <= 2000:
            axis.bar(xs, diffs, width=1.0, color=colors, linewidth=0)
        else:  # tens of thousands of bars are slow to draw and look the same as the filled area
            axis.fill_between(xs, diffs, 0, step="mid", color="#457b9d", linewidth=0)
        axis.axhline(0, color="black", linewidth=0.6)
        wins = sum(d > 0 for d in diffs)
        losses = sum(d < 0 for d in diffs)
        axis.set_title(
            f"{system} - {result.baseline}: {metric} per query "
            f"({wins} better, {losses} worse, {len(diffs) - wins - losses} tied)",
            fontsize="medium",
        )
        axis.set_ylabel("difference")
        axis.set_xlim(-0.5, max(len(diffs) - 0.5, 0.5))
    axis.set_xlabel("queries, sorted by difference")
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def plot_distributions(result: EvaluationResult, path: str | Path, metric: str | None = None) -> Path:
    """Box plot of per-query ``metric`` (default: headline) per system: the spread the mean hides."""
    metric = metric or result.headline_metric
    figure = new_figure(max(5, 1.4 * len(result.systems) + 2), 4)
    axis = figure.add_subplot(1, 1, 1)
    data = [[result.per_query[s][q][metric] for q in result.queries] for s in result.systems]
    axis.boxplot(data, showmeans=True)
    axis.set_xticks(range(1, len(result.systems) + 1), result.systems, rotation=20, ha="right")
    axis.set_title(f"per-query {metric}")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def plot_reliability(result: EvaluationResult, path: str | Path) -> Path | None:
    """Reliability diagram of the calibrated relevance: predicted probability against the observed share of related
    items per bin (the diagonal is perfect calibration), dot size by the number of items. None without data."""
    curves = {name: m["calibration"] for name, m in result.boxes.items() if m.get("calibration")}
    if not curves:
        return None
    figure = new_figure(5.5, 4.6)
    axis = figure.add_subplot(1, 1, 1)
    axis.plot([0, 1], [0, 1], color="#999999", linewidth=1, linestyle="--", label="perfect")
    for name, cal in curves.items():
        xs = [b["predicted"] for b in cal["bins"]]
        ys = [b["observed"] for b in cal["bins"]]
        sizes = [12 + 120 * b["n"] / max(c["n"] for c in cal["bins"]) for b in cal["bins"]]
        axis.plot(xs, ys, marker="", linewidth=1.2)
        axis.scatter(xs, ys, s=sizes, label=f"{name} (ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f})")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("predicted relevance")
    axis.set_ylabel("share related")
    axis.set_title("Reliability of the calibrated relevance")
    axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return Path(path)
