"""The online evaluation's files, in the offline report's style: ``results.json`` (variant -> figures),
``comparisons.json``, ``meta.json`` (data quality, the sample-ratio check, where the events came from),
``by_position.csv``, ``daily.csv``, ``report.md`` / ``report.html`` and PNG plots (CTR per variant, CTR by
position, CTR per day). Every text that reaches HTML or Markdown is escaped (variant names come from settings,
events from browsers); plots are drawn on a matplotlib Figure with the Agg canvas, never through pyplot.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .formatting import _aligned, fmt_p
from .online import OnlineResult
from .plots import new_figure
from .report import _CSS, _dump, _e, _html_table, _json_safe, _md_table

__all__ = [
    "ONLINE_PLOTS",
    "comparison_rows",
    "format_online",
    "render_online_html",
    "render_online_markdown",
    "run_online_evaluation",
    "write_online_report",
]

logger = logging.getLogger(__name__)

ONLINE_PLOTS = {"ctr": "ctr.png", "positions": "ctr_by_position.png", "daily": "ctr_daily.png"}


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%" if value is not None and math.isfinite(value) else "-"


def _interval(low: float, high: float) -> str:
    return f"[{_pct(low)}, {_pct(high)}]" if math.isfinite(low) and math.isfinite(high) else "-"


VARIANT_HEADER = ["variant", "visitors", "impressions", "clicks", "CTR", "95% CI (Wilson)", "clicking visitors"]
COMPARISON_HEADER = [
    "variant",
    "CTR",
    "vs",
    "difference",
    "relative",
    "95% CI (visitor bootstrap)",
    "p (visitor-level)",
    "p (Holm)",
    "p (naive, impressions)",
]


def variant_rows(result: OnlineResult) -> list[list[str]]:
    return [
        [v.name, str(v.visitors), str(v.impressions), str(v.clicks), _pct(v.ctr), _interval(v.ctr_low, v.ctr_high),
         str(v.clicking_visitors)]
        for v in result.variants
    ]  # fmt: skip


def comparison_rows(result: OnlineResult) -> list[list[str]]:
    rows = []
    for c in result.comparisons:
        difference = f"{100 * c.difference:+.2f} pp" if math.isfinite(c.difference) else "-"
        relative = f"{100 * c.relative:+.1f}%" if math.isfinite(c.relative) else "-"
        ci = f"[{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}] pp" if math.isfinite(c.ci_low) else "-"
        rows.append([c.variant, _pct(c.ctr_variant), c.baseline, difference, relative, ci, fmt_p(c.p_value),
                     fmt_p(c.p_holm), fmt_p(c.p_naive)])  # fmt: skip
    return rows


def position_rows(result: OnlineResult) -> tuple[list[str], list[list[str]]]:
    positions = sorted({p for v in result.variants for p in v.by_position})
    header = [
        "position",
        *(f"{v.name} CTR" for v in result.variants),
        *(f"{v.name} impressions" for v in result.variants),
    ]
    rows = []
    for p in positions:
        ctrs = [_pct(v.by_position[p][2]) if p in v.by_position else "-" for v in result.variants]
        counts = [str(v.by_position[p][0]) if p in v.by_position else "0" for v in result.variants]
        rows.append([str(p), *ctrs, *counts])
    return header, rows


def quality_lines(result: OnlineResult) -> list[str]:
    q = result.quality
    lines = [f"{q.get('events', 0)} events of {q.get('visitors', 0)} visitors"]
    if q.get("first_event"):
        lines.append(f"from {q['first_event']} to {q['last_event']}")
    load = q.get("load") or {}
    if load:
        lines.append(
            f"read {load.get('parquet_events', 0)} events from {load.get('parts', 0)} Parquet parts and "
            f"{load.get('log_events', 0)} from the log not yet compacted; {load.get('duplicates', 0)} duplicates "
            f"dropped; {load.get('damaged', 0)} damaged log lines left out"
        )
    lines.append(
        f"{q.get('visitors_in_several_variants', 0)} visitors seen in more than one variant, left out with their "
        f"{q.get('events_of_those_visitors', 0)} events"
    )
    lines.append(f"{q.get('orphan_clicks', 0)} clicks without a matching impression (lost impression beacons)")
    if result.srm is not None:
        lines.append(result.srm.line())
    else:
        lines.append("sample ratio not checked: no shares configured (RECOMMENDER_VARIANTS or --shares)")
    return lines


def format_online(result: OnlineResult) -> str:
    """What the terminal prints: the variants, then each against the baseline."""
    parts = [_aligned(VARIANT_HEADER, variant_rows(result))]
    if result.comparisons:
        parts += ["", f"CTR against {result.baseline} (visitors are the unit of analysis)"]
        parts.append(_aligned(COMPARISON_HEADER, comparison_rows(result)))
    return "\n".join(parts)


# -- plots -----------------------------------------------------------------------------------------
def plot_ctr(result: OnlineResult, path: Path) -> Path:
    figure = new_figure(max(4.5, 1.3 * len(result.variants) + 2), 3.6)
    axis = figure.add_subplot(1, 1, 1)
    names = [v.name for v in result.variants]
    ctrs = [100 * v.ctr if math.isfinite(v.ctr) else 0 for v in result.variants]
    below = [max(0.0, c - 100 * v.ctr_low) if math.isfinite(v.ctr_low) else 0 for c, v in zip(ctrs, result.variants)]
    above = [max(0.0, 100 * v.ctr_high - c) if math.isfinite(v.ctr_high) else 0 for c, v in zip(ctrs, result.variants)]
    axis.bar(range(len(names)), ctrs, yerr=[below, above], capsize=6, color="#457b9d")
    axis.set_xticks(range(len(names)), names, rotation=15, ha="right")
    axis.set_ylabel("CTR, % (95% Wilson interval)")
    axis.set_title("Click-through rate per variant")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_positions(result: OnlineResult, path: Path) -> Path:
    figure = new_figure(7, 3.8)
    axis = figure.add_subplot(1, 1, 1)
    for number, v in enumerate(result.variants):
        points = sorted((p, r, lo, hi) for p, (_, _, r, lo, hi) in v.by_position.items() if math.isfinite(r))
        if not points:
            continue
        xs = [p for p, *_ in points]
        axis.plot(
            xs,
            [100 * r for _, r, _, _ in points],
            marker="o",
            linestyle=("-", "--", ":", "-.")[number % 4],
            label=v.name,
        )
        axis.fill_between(xs, [100 * lo for *_, lo, _ in points], [100 * hi for *_, hi in points], alpha=0.15)
    axis.set_xlabel("position in the box")
    axis.set_ylabel("CTR, %")
    axis.set_title("CTR by position (95% Wilson bands)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_daily(result: OnlineResult, path: Path) -> Path | None:
    days = sorted({d for v in result.variants for d in v.daily})
    if len(days) < 2:
        return None
    figure = new_figure(max(6, 0.35 * len(days) + 3), 3.6)
    axis = figure.add_subplot(1, 1, 1)
    for v in result.variants:
        ys = []
        for d in days:
            impressions, clicks = v.daily.get(d, (0, 0))
            ys.append(100 * clicks / impressions if impressions else math.nan)
        axis.plot(range(len(days)), ys, marker="o", markersize=3, label=v.name)
    axis.set_xticks(range(len(days)), days, rotation=45, ha="right", fontsize="small")
    axis.set_ylabel("CTR, %")
    axis.set_title("CTR per day (novelty effects, incidents)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return path


# -- documents -------------------------------------------------------------------------------------
_TITLES = {"ctr": "CTR per variant", "positions": "CTR by position", "daily": "CTR per day"}
_NOTE = (
    "Visitors, not impressions, are the randomised unit: p (visitor-level) is a z-test with delta-method variances "
    "over visitors, the interval a bootstrap over visitors; p (naive) treats impressions as independent and is "
    "shown only for comparison (it is too small when a visitor's impressions are correlated)."
)


def render_online_markdown(result: OnlineResult, plots: Mapping[str, Path | None]) -> str:
    parts = ["# Online evaluation", ""]
    parts += [f"- {_e(line)}" for line in quality_lines(result)]
    parts += ["", "## Variants", "", _md_table(VARIANT_HEADER, variant_rows(result)), ""]
    if result.comparisons:
        parts += [f"## Against {_e(result.baseline)}", "", _md_table(COMPARISON_HEADER, comparison_rows(result)), ""]
        parts += [_e(_NOTE), ""]
    parts += ["## CTR by position", "", _md_table(*position_rows(result)), ""]
    for key, title in _TITLES.items():
        path = plots.get(key)
        if path is not None:
            parts += [f"## {_e(title)}", "", f"![{_e(title)}]({_e(Path(path).name)})", ""]
    return "\n".join(parts)


def render_online_html(result: OnlineResult, plots: Mapping[str, Path | None], meta: Mapping[str, Any]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Online evaluation</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Online evaluation</h1>",
        "<ul>",
        *(f"<li>{_e(line)}</li>" for line in quality_lines(result)),
        "</ul>",
        "<h2>Variants</h2>",
        _html_table(VARIANT_HEADER, variant_rows(result)),
    ]
    if result.comparisons:
        parts += [f"<h2>Against {_e(result.baseline)}</h2>", _html_table(COMPARISON_HEADER, comparison_rows(result))]
        parts.append(f"<p>{_e(_NOTE)}</p>")
    parts += ["<h2>CTR by position</h2>", _html_table(*position_rows(result))]
    for key, title in _TITLES.items():
        path = plots.get(key)
        if path is not None:
            parts += [f"<h2>{_e(title)}</h2>", f'<img src="{_e(Path(path).name)}" alt="{_e(title)}">']
    parts += ["<h2>Run metadata</h2>", f"<pre>{_e(json.dumps(_json_safe(meta), indent=2, ensure_ascii=False))}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_online_report(result: OnlineResult, directory: str | Path, meta: Mapping[str, Any]) -> dict[str, Path]:
    """Every file of the online report into ``directory`` (created if needed); returns ``{kind: path}``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    full_meta = {**meta, "quality": result.quality, "srm": result.srm.to_dict() if result.srm else None,
                 "baseline": result.baseline}  # fmt: skip
    written = {
        "results": _dump({v.name: v.to_dict() for v in result.variants}, directory / "results.json"),
        "comparisons": _dump(
            {"baseline": result.baseline, "comparisons": [c.to_dict() for c in result.comparisons]},
            directory / "comparisons.json",
        ),
        "meta": _dump(full_meta, directory / "meta.json"),
        "by_position": _write_csv(
            directory / "by_position.csv",
            ["variant", "position", "impressions", "clicks", "ctr", "ctr_low", "ctr_high"],
            [[v.name, p, *values] for v in result.variants for p, values in sorted(v.by_position.items())],
        ),
        "daily": _write_csv(
            directory / "daily.csv",
            ["variant", "date", "impressions", "clicks"],
            [[v.name, d, i, c] for v in result.variants for d, (i, c) in sorted(v.daily.items())],
        ),
    }
    plots: dict[str, Path | None] = {}
    if result.variants:
        plots["ctr"] = plot_ctr(result, directory / ONLINE_PLOTS["ctr"])
        plots["positions"] = plot_positions(result, directory / ONLINE_PLOTS["positions"])
        plots["daily"] = plot_daily(result, directory / ONLINE_PLOTS["daily"])
    for key, name in ONLINE_PLOTS.items():
        if plots.get(key) is None:
            (directory / name).unlink(missing_ok=True)  # an earlier run's plot would describe other events
        else:
            written[key] = plots[key]  # type: ignore[assignment]
    markdown = directory / "report.md"
    markdown.write_text(render_online_markdown(result, plots), encoding="utf-8")
    page = directory / "report.html"
    page.write_text(render_online_html(result, plots, full_meta), encoding="utf-8")
    written.update({"markdown": markdown, "html": page})
    logger.info("online evaluation report written to %s", directory)
    return written


def run_online_evaluation(
    events_dir: Path,
    report_dir: Path,
    *,
    since: Any = None,
    until: Any = None,
    shares: Mapping[str, float] | None = None,
    seed: int = 0,
    n_bootstrap: int = 2000,
) -> tuple[OnlineResult, dict[str, Path]]:
    """Load the events of ``events_dir`` (Parquet and the log not yet compacted, duplicates dropped), evaluate
    them per variant and write the report."""
    from ..events.read import load_events
    from .online import evaluate_online

    table, load = load_events(events_dir, since=since, until=until)
    result = evaluate_online(table, shares=shares, n_bootstrap=n_bootstrap, seed=seed)
    result.quality["load"] = load.to_dict()
    meta = {
        "events_dir": str(events_dir),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "shares": dict(shares) if shares else None,
        "seed": seed,
        "n_bootstrap": n_bootstrap,
    }
    return result, write_online_report(result, report_dir, meta)
