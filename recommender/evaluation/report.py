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

from .formatting import (
    box_rows,
    floor_curve_rows,
    fmt,
    fmt_p,
    format_comparisons,
    format_table,
    metric_order,
    sessions_line,
    unknown_line,
)
from .plots import PLOT_FILES, plot_curves, plot_differences, plot_distributions, plot_reliability

if TYPE_CHECKING:
    from .result import EvaluationResult

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


def results_dict(result: EvaluationResult) -> dict[str, dict[str, float | None]]:
    """``{system: {metric: value}}``: the content of ``results.json``."""
    return {system: _json_safe(dict(result.means[system])) for system in result.systems}


def comparisons_dict(result: EvaluationResult) -> dict[str, Any]:
    """The content of ``comparisons.json``: baseline name and one record per (system, metric)."""
    return {"baseline": result.baseline, "comparisons": [c.to_dict() for c in result.comparisons]}


def write_results_json(result: EvaluationResult, directory: str | Path) -> dict[str, Path]:
    """``results.json`` (system -> metrics), ``comparisons.json``, ``meta.json`` and (when computed) ``boxes.json``
    (system -> box metrics, floor, calibration)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = {
        "results": _dump(results_dict(result), directory / "results.json"),
        "comparisons": _dump(comparisons_dict(result), directory / "comparisons.json"),
        "meta": _dump(result.meta, directory / "meta.json"),
    }
    if result.boxes:
        written["boxes"] = _dump(result.boxes, directory / "boxes.json")
    else:
        (directory / "boxes.json").unlink(missing_ok=True)
    return written


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
                fmt(c.baseline_mean),
                fmt(c.system_mean),
                f"{c.mean_difference:+.4f}",
                f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
                fmt_p(c.t_pvalue),
                fmt_p(c.wilcoxon_pvalue),
                fmt(c.cohens_d),
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
    keys = metric_order(result)
    return ["metric", *result.systems], [[k, *(fmt(result.means[s].get(k)) for s in result.systems)] for k in keys]


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
    if result.boxes:
        parts += ["## Boxes (what a reader sees)", "", _md_table(*box_rows(result)), ""]
        curve = floor_curve_rows(result)
        if curve is not None:
            parts += ["Floor curve of `default` (the engine rerun at each `min_relevance`):", "", _md_table(*curve), ""]
    titles = {
        "reliability": "Reliability of the calibrated relevance",
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
    if result.boxes:
        parts += ["<h2>Boxes (what a reader sees)</h2>", _html_table(*box_rows(result))]
        curve = floor_curve_rows(result)
        if curve is not None:
            parts += [
                "<p>Floor curve of <code>default</code> (the engine rerun at each <code>min_relevance</code>):</p>",
                _html_table(*curve),
            ]
    titles = {
        "reliability": "Reliability of the calibrated relevance",
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
        "reliability": plot_reliability(result, directory / PLOT_FILES["reliability"]),
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
