"""Turn an :class:`~.runner.EvaluationResult` into files people and programs read.

* ``results.json``: ``{system: {metric: value}}`` and nothing else at the top level, so dashboards and
  regression checks index it directly; ``comparisons.json`` and ``meta.json`` hold the rest.
* ``per_query.csv`` / ``per_query.json``: per-query scores, to find the queries a change broke; ``runs.json``: the
  lists themselves.
* ``report.md`` / ``report.html`` with PNG plots: metric@k curves, sorted per-query differences against the first
  system, per-query score distributions.

Every piece of text that reaches HTML (and Markdown, which renders raw HTML) goes through :func:`html.escape`:
system names and article ids come from users and may contain ``<script>``. Plots are drawn on
:class:`matplotlib.figure.Figure` with the Agg canvas, never through pyplot, so writing a report from a notebook
does not change its plotting backend.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .groundtruth import UnknownIds
    from .runner import EvaluationResult

__all__ = [
    "format_table",
    "format_comparisons",
    "unknown_line",
    "sessions_line",
    "results_dict",
    "comparisons_dict",
    "write_results_json",
    "write_per_query",
    "plot_curves",
    "plot_differences",
    "plot_distributions",
    "render_markdown",
    "render_html",
    "write_report",
]

logger = logging.getLogger(__name__)

PLOT_FILES = {"curves": "curves.png", "differences": "differences.png", "distributions": "distributions.png"}
_LABELS = {
    "ndcg": "nDCG",
    "precision": "Precision",
    "recall": "Recall",
    "mrr": "MRR",
    "map": "MAP",
    "hit_rate": "Hit rate",
}


# --------------------------------------------------------------------------------------------------------------
# Plain data
# --------------------------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None recursively: JSON has no such numbers and strict parsers reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_safe(value.item())
    return value


def _dump(data: Any, path: Path) -> Path:
    path.write_text(
        json.dumps(_json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )
    return path


def _metric_order(result: EvaluationResult) -> list[str]:
    keys = list(result.ranking_keys)
    for system in result.systems:
        keys.extend(key for key in result.means[system] if key not in keys)
    return keys


def results_dict(result: EvaluationResult) -> dict[str, dict[str, float | None]]:
    """``{system: {metric: value}}``: the content of ``results.json``."""
    return {system: _json_safe(dict(result.means[system])) for system in result.systems}


def comparisons_dict(result: EvaluationResult) -> dict[str, Any]:
    """The content of ``comparisons.json``: baseline name and one record per (system, metric)."""
    return {"baseline": result.baseline, "comparisons": [c.to_dict() for c in result.comparisons]}


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4f}"


def _fmt_p(value: float) -> str:
    """p-values: scientific below 0.001, where "0.0000" would hide how strong the evidence is."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.1e}" if value < 0.001 else f"{value:.4f}"


def _means_of(source: Any) -> tuple[list[str], Mapping[str, Mapping[str, Any]], list[str]]:
    if hasattr(source, "means") and hasattr(source, "systems"):
        return list(source.systems), source.means, _metric_order(source)
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
    return _aligned(["metric", *systems], [[key, *(_fmt(means[s].get(key)) for s in systems)] for key in keys])


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
    title = f"{metric} against {result.baseline} (mean {_fmt(first.baseline_mean)}), paired over {first.n} queries"
    header = ["system", "mean", "difference", "t-test p", "Wilcoxon p"]
    rows = [
        [c.system, _fmt(c.system_mean), _fmt_diff(c.mean_difference), _fmt_p(c.t_pvalue), _fmt_p(c.wilcoxon_pvalue)]
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


def write_results_json(result: EvaluationResult, directory: str | Path) -> dict[str, Path]:
    """``results.json`` (system -> metrics), ``comparisons.json`` and ``meta.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "results": _dump(results_dict(result), directory / "results.json"),
        "comparisons": _dump(comparisons_dict(result), directory / "comparisons.json"),
        "meta": _dump(result.meta, directory / "meta.json"),
    }


def write_per_query(result: EvaluationResult, directory: str | Path) -> dict[str, Path]:
    """``per_query.csv`` (system, query_id, metric columns, latency_ms), ``per_query.json`` and ``runs.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    keys = list(result.ranking_keys)
    csv_path = directory / "per_query.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["system", "query_id", *keys, "latency_ms"])
        for system in result.systems:
            latency = result.latencies_ms.get(system, {})
            for query_id in result.queries:
                scores = result.per_query[system][query_id]
                writer.writerow(
                    [
                        system,
                        query_id,
                        *(repr(float(scores[k])) for k in keys),
                        f"{latency[query_id]:.3f}" if query_id in latency else "",
                    ]
                )
    return {
        "per_query_csv": csv_path,
        "per_query_json": _dump(result.per_query, directory / "per_query.json"),
        "runs": _dump(result.runs, directory / "runs.json"),
    }


# --------------------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
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
    figure = _figure(4.2 * columns, 3.2 * rows)
    for index, name in enumerate(names):
        axis = figure.add_subplot(rows, columns, index + 1)
        for number, system in enumerate(result.systems):
            points = sorted(result.curves[system][name].items())
            style = ("-", "--", ":", "-.")[number % 4]  # systems with equal curves stay visible
            axis.plot(
                [k for k, _ in points], [v for _, v in points], linestyle=style, marker="o", markersize=3, label=system
            )
        axis.set_title(f"{_LABELS.get(name, name)}@k")
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
    figure = _figure(9, 2.6 * len(others))
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
    figure = _figure(max(5, 1.4 * len(result.systems) + 2), 4)
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


# --------------------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _comparison_rows(result: EvaluationResult) -> list[list[str]]:
    rows = []
    for c in result.comparisons:
        rows.append(
            [
                c.system,
                c.metric,
                _fmt(c.baseline_mean),
                _fmt(c.system_mean),
                f"{c.mean_difference:+.4f}",
                f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
                _fmt_p(c.t_pvalue),
                _fmt_p(c.wilcoxon_pvalue),
                _fmt(c.cohens_d),
                f"{c.wins}/{c.ties}/{c.losses}",
            ]
        )
    return rows


_COMPARISON_HEADER = [
    "system",
    "metric",
    "baseline",
    "system mean",
    "difference",
    "95% CI",
    "t-test p",
    "Wilcoxon p",
    "Cohen's d",
    "W/T/L",
]


def _health_rows(result: EvaluationResult) -> tuple[list[str], list[list[str]]]:
    keys: list[str] = []
    for system in result.systems:
        keys.extend(k for k in result.health.get(system, {}) if k not in keys)
    return ["system", *keys], [[s, *(str(result.health[s].get(k, 0)) for k in keys)] for s in result.systems]


def _summary_lines(result: EvaluationResult) -> list[str]:
    cutoffs = ", ".join(map(str, result.cutoffs))
    lines = [f"{len(result.queries)} queries, cutoffs {cutoffs}, baseline: {result.baseline}"]
    if result.unknown is not None:
        lines.append(unknown_line(result.unknown))
    sessions = result.meta.get("sessions")
    if isinstance(sessions, Mapping):
        lines.append(sessions_line(sessions))
    return lines


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return html.escape(str(text), quote=False).replace("|", "\\|")

    out = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _means_rows(result: EvaluationResult) -> tuple[list[str], list[list[str]]]:
    keys = _metric_order(result)
    return ["metric", *result.systems], [[k, *(_fmt(result.means[s].get(k)) for s in result.systems)] for k in keys]


def render_markdown(result: EvaluationResult, plots: Mapping[str, Path | None] | None = None) -> str:
    """``report.md``: means, comparisons, output health, plots. Names and ids are HTML-escaped."""
    plots = plots or {}
    parts = ["# Offline evaluation", ""]
    parts += [f"- {_e(line)}" for line in _summary_lines(result)]
    parts += ["", "## Means", "", _md_table(*_means_rows(result)), ""]
    if result.comparisons:
        parts += [
            f"## Paired comparisons against {_e(result.baseline)}",
            "",
            _md_table(_COMPARISON_HEADER, _comparison_rows(result)),
            "",
        ]
    parts += ["## Output health", "", _md_table(*_health_rows(result)), ""]
    titles = {
        "curves": "Metric@k",
        "differences": f"Per-query differences ({result.headline_metric})",
        "distributions": f"Per-query distribution ({result.headline_metric})",
    }
    for key, title in titles.items():
        path = plots.get(key)
        if path is not None:
            parts += [f"## {_e(title)}", "", f"![{_e(title)}]({Path(path).name})", ""]
    return "\n".join(parts)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px}"
    "td{text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
    "pre{background:#f6f6f6;padding:1em;overflow:auto}"
)


def render_html(result: EvaluationResult, plots: Mapping[str, Path | None] | None = None) -> str:
    """``report.html``: self-contained except for the PNGs next to it. Every text node is escaped."""
    plots = plots or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Offline evaluation</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Offline evaluation</h1>",
        "<ul>",
    ]
    parts += [f"<li>{_e(line)}</li>" for line in _summary_lines(result)]
    parts += ["</ul>", "<h2>Means</h2>", _html_table(*_means_rows(result))]
    if result.comparisons:
        parts += [
            f"<h2>Paired comparisons against {_e(result.baseline)}</h2>",
            _html_table(_COMPARISON_HEADER, _comparison_rows(result)),
        ]
    parts += ["<h2>Output health</h2>", _html_table(*_health_rows(result))]
    titles = {
        "curves": "Metric@k",
        "differences": f"Per-query differences ({result.headline_metric})",
        "distributions": f"Per-query distribution ({result.headline_metric})",
    }
    for key, title in titles.items():
        path = plots.get(key)
        if path is not None:
            parts += [f"<h2>{_e(title)}</h2>", f'<img src="{_e(Path(path).name)}" alt="{_e(title)}">']
    meta = json.dumps(_json_safe(result.meta), indent=2, ensure_ascii=False)
    parts += ["<h2>Run metadata</h2>", f"<pre>{_e(meta)}</pre>", "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report(result: EvaluationResult, directory: str | Path) -> dict[str, Path]:
    """Write every report file into ``directory`` (created if needed); returns ``{kind: path}``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    written.update(write_results_json(result, directory))
    written.update(write_per_query(result, directory))
    plots: dict[str, Path | None] = {
        "curves": plot_curves(result, directory / PLOT_FILES["curves"]),
        "differences": plot_differences(result, directory / PLOT_FILES["differences"]),
        "distributions": plot_distributions(result, directory / PLOT_FILES["distributions"]),
    }
    for key, path in plots.items():
        if path is not None:
            written[key] = path
        else:  # a plot from an earlier run in the same directory would describe other systems
            (directory / PLOT_FILES[key]).unlink(missing_ok=True)
    markdown = directory / "report.md"
    markdown.write_text(render_markdown(result, plots), encoding="utf-8")
    page = directory / "report.html"
    page.write_text(render_html(result, plots), encoding="utf-8")
    written.update({"markdown": markdown, "html": page})
    logger.info("evaluation report written to %s", directory)
    return written
