"""``recommender evaluate``: offline evaluation against baselines, with significance tests and a report; with
``--events``, online evaluation of the A/B variants from readers' impressions and clicks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import GradingOpt, IndexDirOpt, LabelFieldOpt, QrelsOpt, SessionsOpt, fail, run, settings_from

__all__ = ["evaluate"]

SYSTEMS = "default,tfidf,embedding,recent,recent-same-section,random"


def _eval_cache_dir(paths: list[Path]) -> Path:
    h = hashlib.blake2b(digest_size=8)
    for p in sorted(Path(x).resolve() for x in paths):
        try:
            st = p.stat()
        except FileNotFoundError:
            fail(f"{p}: no such file or folder", 2)
        except OSError as exc:
            fail(f"{p}: cannot read: {exc.strerror}", 2)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "related-articles" / "eval" / h.hexdigest()


def evaluate(
    report_dir: Annotated[
        Path,
        typer.Option(
            "--report",
            metavar="DIR",
            help="Folder for results.json, per-query files, report.html/md and plots.",
            show_default=False,
        ),
    ],
    articles: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--articles", metavar="FILE", help="Articles file(s); indexed into a cache unless --index-dir is given."
        ),
    ] = None,
    qrels: QrelsOpt = None,
    label_field: LabelFieldOpt = None,
    grading: GradingOpt = "exact",
    sessions: SessionsOpt = None,
    index_dir: IndexDirOpt = None,
    systems: Annotated[str, typer.Option(metavar="NAME,...", help="Comma-separated systems.")] = SYSTEMS,
    config: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--config",
            metavar="FILE",
            help="Ranking configuration file(s) to compare (JSON/TOML); named by their 'name' or file stem.",
        ),
    ] = None,
    k: Annotated[
        Optional[list[int]], typer.Option("--k", metavar="N", help="Cutoffs, repeatable (default: 5 and 10).")
    ] = None,
    sample: Annotated[
        Optional[int], typer.Option(metavar="N", min=1, help="Evaluate a seeded random sample of this many queries.")
    ] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed for sampling, bootstrap and the random baseline.")] = 0,
    sparse_stories: Annotated[
        Optional[int],
        typer.Option(
            metavar="SEED",
            help="Evaluate on a sparse version of --articles: 1 to 3 articles of each story kept (seeded), the rest "
            "dropped, as on a real site where most stories have few follow-ups.",
        ),
    ] = None,
    story_field: Annotated[
        str,
        typer.Option(metavar="NAME", help="The label that says which story an article belongs to (--sparse-stories)."),
    ] = "story_id",
    box_k: Annotated[int, typer.Option(metavar="N", min=1, max=50, help="Box size for the box metrics.")] = 6,
    events: Annotated[
        Optional[Path],
        typer.Option(
            "--events",
            metavar="DIR",
            help="Online evaluation instead: the impression and click events in this folder, "
            "per variant (CTR, CTR by position, tests with visitors as the unit, sample-ratio check).",
        ),
    ] = None,
    since: Annotated[
        Optional[str], typer.Option(metavar="DATE", help="With --events: only events at or after (ISO-8601).")
    ] = None,
    until: Annotated[
        Optional[str], typer.Option(metavar="DATE", help="With --events: only events before (ISO-8601).")
    ] = None,
    shares: Annotated[
        Optional[str],
        typer.Option(
            metavar="NAME=SHARE,...",
            help="With --events: the traffic shares for the sample-ratio check "
            "(default: RECOMMENDER_VARIANTS; the first variant is the baseline).",
        ),
    ] = None,
) -> None:
    """Compare the default ranking with baselines (and configuration files) offline, with significance tests; or,
    with --events, compare the A/B variants online from readers' impressions and clicks.

    Example: recommender evaluate --articles articles.jsonl --qrels qrels.tsv --report reports/today
    """
    from ..errors import ConfigurationError

    if events is not None:
        offline = {
            "--qrels": qrels,
            "--label-field": label_field,
            "--sessions": sessions,
            "--articles": articles or None,
            "--sparse-stories": sparse_stories,
        }
        given = [flag for flag, value in offline.items() if value is not None]
        if given:
            fail(f"--events (online evaluation) cannot be combined with {', '.join(given)} (offline evaluation)", 2)
        _online(events, report_dir, since=since, until=until, shares=shares, seed=seed, index_dir=index_dir)
        return
    for flag, value in (("--since", since), ("--until", until), ("--shares", shares)):
        if value is not None:
            fail(f"{flag} is an option of online evaluation: give --events DIR", 2)
    if sum(x is not None for x in (qrels, label_field, sessions)) != 1:
        fail("give exactly one ground truth: --qrels FILE, --label-field NAME or --sessions FILE (or --events DIR)", 2)
    if not articles and index_dir is None:
        fail("give --articles FILE (indexed into a cache) or --index-dir DIR", 2)
    if sparse_stories is not None and index_dir is not None:
        fail("--sparse-stories builds its own index from --articles: leave out --index-dir", 2)
    settings = settings_from(index_dir=index_dir)
    if index_dir is None:
        cache = _eval_cache_dir(articles or [])
        if sparse_stories is not None:
            cache = cache.with_name(f"{cache.name}-sparse-{story_field}-{sparse_stories}")
        settings = settings.overridden(index_dir=cache)

    def go():
        from ..evaluation.offline import GroundTruth, SparseStories, run_offline_evaluation

        truth = GroundTruth(qrels=qrels, label_field=label_field, grading=grading, sessions=sessions)
        sparse = SparseStories(sparse_stories, story_field) if sparse_stories is not None else None
        return run_offline_evaluation(
            settings, truth, report_dir, articles=articles or (), systems=[n.strip() for n in systems.split(",") if n.strip()],
            configs=config or (), cutoffs=k or (5, 10), sample=sample, seed=seed, build=index_dir is None,
            sparse=sparse, box_k=box_k, notice=lambda line: typer.echo(line, err=True),
        )  # fmt: skip

    try:
        outcome = run(go)
    except (ValueError, ConfigurationError) as exc:
        fail(str(exc), 2)
    from ..evaluation.formatting import format_boxes, format_comparisons, format_table, sessions_line, unknown_line

    result = outcome.result
    if "sessions" in result.meta:
        typer.echo(sessions_line(result.meta["sessions"]), err=True)
    typer.echo(format_table(result))
    comparisons = format_comparisons(result)
    if comparisons:
        typer.echo("")
        typer.echo(comparisons)
    boxes = format_boxes(result)
    if boxes:
        typer.echo("")
        typer.echo(boxes)
    if result.unknown is not None and result.unknown.count:
        typer.echo(unknown_line(result.unknown), err=True)
    typer.echo(f"report: {report_dir / 'report.html'}")


def _online(
    events: Path, report_dir: Path, *, since: str | None, until: str | None, shares: str | None, seed: int,
    index_dir: Path | None,
) -> None:  # fmt: skip
    """``evaluate --events``: load, evaluate per variant, write the report, print the tables and the SRM verdict."""
    from .events import parse_assignments, parse_time

    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start and end and start >= end:
        fail("--since must be before --until", 2)
    if shares is not None:
        planned = parse_assignments(shares, "--shares")
        from ..events.variants import check_shares

        try:
            check_shares(planned)
        except ValueError as exc:
            fail(f"--shares: {exc}", 2)
    else:
        configured = settings_from(index_dir=index_dir).variants
        planned = {name: spec.share for name, spec in configured.items()} or None
    if not events.is_dir():
        fail(f"--events {events}: no such folder", 2)

    def go():
        from ..evaluation.online_report import run_online_evaluation

        return run_online_evaluation(events, report_dir, since=start, until=end, shares=planned, seed=seed)

    result, _ = run(go)
    from ..evaluation.online_report import format_online

    if not result.variants:
        typer.echo(f"warning: no events in {events}" + (" in that window" if start or end else ""), err=True)
    typer.echo(format_online(result))
    if result.srm is not None:
        typer.echo(("warning: " if result.srm.mismatch else "") + result.srm.line(), err=True)
    typer.echo(f"report: {report_dir / 'report.html'}")
