"""Evaluation results as text: the aligned tables a terminal or notebook prints, and one-line notices."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .groundtruth import UnknownIds
    from .result import EvaluationResult

__all__ = [
    "BOX_COLUMNS",
    "box_rows",
    "format_boxes",
    "metric_order",
    "format_comparisons",
    "format_table",
    "fmt",
    "fmt_p",
    "sessions_line",
    "unknown_line",
]


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4f}"


def fmt_p(value: float) -> str:
    """p-values: scientific below 0.001, where "0.0000" would hide how strong the evidence is."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.1e}" if value < 0.001 else f"{value:.4f}"


def _means_of(source: Any) -> tuple[list[str], Mapping[str, Mapping[str, Any]], list[str]]:
    if hasattr(source, "means") and hasattr(source, "systems"):
        return list(source.systems), source.means, metric_order(source)
    systems = list(source)
    keys: list[str] = []
    for system in systems:
        keys.extend(key for key in source[system] if key not in keys)
    return systems, source, keys


def format_table(
    source: EvaluationResult | Mapping[str, Mapping[str, float]], metrics: Sequence[str] | None = None
) -> str:
    """Aligned plain-text table: one row per metric, one column per system (metrics outnumber systems)."""
    systems, means, keys = _means_of(source)
    if metrics is not None:
        keys = list(metrics)
    return _aligned(["metric", *systems], [[key, *(fmt(means[s].get(key)) for s in systems)] for key in keys])


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """First column left-aligned (names), the others right-aligned (numbers), a dashed rule under the header."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(widths[i + 1]) for i, cell in enumerate(cells[1:])]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _fmt_diff(value: float) -> str:
    return f"{value:+.4f}" if value is not None and math.isfinite(value) else "-"


def format_comparisons(result: EvaluationResult, metric: str | None = None) -> str:
    """Plain-text table of each system against the baseline on ``metric`` (default: the headline, nDCG at the
    largest cutoff): the terminal shows means, and a mean alone does not say whether a difference is real.
    Empty when there is nothing to compare (one system)."""
    metric = metric or result.headline_metric
    chosen = [c for c in result.comparisons if c.metric == metric]
    if not chosen:
        return ""
    first = chosen[0]
    title = f"{metric} against {result.baseline} (mean {fmt(first.baseline_mean)}), paired over {first.n} queries"
    header = ["system", "mean", "difference", "t-test p", "Wilcoxon p"]
    rows = [
        [c.system, fmt(c.system_mean), _fmt_diff(c.mean_difference), fmt_p(c.t_pvalue), fmt_p(c.wilcoxon_pvalue)]
        for c in chosen
    ]
    return title + "\n" + _aligned(header, rows)


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def unknown_line(unknown: UnknownIds) -> str:
    """One readable line for ground-truth ids the corpus lacks (terminal and reports say the same)."""
    examples = sorted(set(unknown.queries) | set(unknown.docs))
    shown = f", e.g. {', '.join(examples[:3])}" if examples else ""
    return (
        f"ground-truth ids not in the corpus: {_count(len(unknown.queries), 'query id')} (not evaluated), "
        f"{_count(len(unknown.docs), 'doc id')} ({_count(unknown.pairs, 'judged pair')} with a missing doc){shown}"
    )


def sessions_line(stats: Mapping[str, Any]) -> str:
    """One readable line from :meth:`SessionStats.to_dict`: how much of the reading log became ground truth."""
    return (
        f"sessions: {_count(stats['sessions'], 'session')} on {_count(stats['lines'], 'line')}, "
        f"{_count(stats['reads'], 'read')} ({stats['repeated_reads']} re-reads; {stats['unknown_reads']} reads of "
        f"{_count(stats['unknown_ids'], 'id')} not in the corpus, left out), giving "
        f"{_count(stats['queries'], 'query', 'queries')} and {_count(stats['pairs'], 'co-read pair')}"
    )


def metric_order(result: EvaluationResult) -> list[str]:
    keys = list(result.ranking_keys)
    for system in result.systems:
        keys.extend(key for key in result.means[system] if key not in keys)
    return keys


#: Box metrics shown in tables, in order (keys without the ``@k``).
BOX_COLUMNS = (
    "unrelated_shown",
    "boxes_with_unrelated",
    "same_story_recall",
    "mean_box_length",
    "empty_boxes",
    "fallback_shown",
)


def box_rows(result: EvaluationResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the box table (one row per system, with the floor it was measured at)."""
    k = (result.meta.get("boxes") or {}).get("k", 6)
    header = ["system", "floor", *(f"{c}@{k}" for c in BOX_COLUMNS)]
    rows = []
    for system, metrics in result.boxes.items():
        floor = metrics.get("floor")
        shown = "-" if floor is None else floor if isinstance(floor, str) else fmt(floor)
        rows.append([system, shown, *(fmt(metrics.get(f"{c}@{k}")) for c in BOX_COLUMNS)])
    return header, rows


def floor_curve_rows(result: EvaluationResult, system: str = "default") -> tuple[list[str], list[list[str]]] | None:
    """Header and rows of one engine system's floor curve (None when it has none)."""
    curve = (result.boxes or {}).get(system, {}).get("floor_curve")
    if not curve:
        return None
    k = (result.meta.get("boxes") or {}).get("k", 6)
    names = ("unrelated_shown", "same_story_recall", "mean_box_length", "empty_boxes")
    return ["min_relevance", *(f"{n}@{k}" for n in names)], [
        [fmt(p["floor"]), *(fmt(p[n]) for n in names)] for p in curve
    ]


def format_boxes(result: EvaluationResult) -> str:
    """The box table as aligned text, then the default's floor curve ("" when no box metrics were computed)."""
    if not result.boxes:
        return ""
    header, rows = box_rows(result)
    text = _aligned(header, rows)
    curve = floor_curve_rows(result)
    if curve is not None:
        text += "\n\nfloor curve of default (the engine rerun at each min_relevance)\n" + _aligned(*curve)
    return text
