"""``recommender events``: the event log on demand (compact), clicks as reading sessions (to-sessions), and
synthetic readers for tests and demos (simulate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import IndexDirOpt, fail, run, settings_from

__all__ = ["app", "parse_assignments", "parse_time"]

app = typer.Typer(
    help="Impression and click events: compact the log into Parquet, turn clicks into sessions, simulate readers.\n\n"
    "Example: recommender events compact --events /srv/related/index/events",
    no_args_is_help=True,
    rich_markup_mode=None,
)

EventsOpt = Annotated[
    Path | None,
    typer.Option(
        "--events",
        metavar="DIR",
        help="Events folder (default: RECOMMENDER_EVENTS_DIR, else <index-dir>/events).",
        show_default=False,
    ),
]
SinceOpt = Annotated[
    str | None, typer.Option(metavar="DATE", help="Only events at or after (ISO-8601, UTC if no offset).")
]
UntilOpt = Annotated[str | None, typer.Option(metavar="DATE", help="Only events before (ISO-8601, UTC if no offset).")]


def parse_time(value: str | None, flag: str):
    """An ISO-8601 flag as aware UTC; a bad one is one ``error:`` line and exit 2."""
    if value is None:
        return None
    from pydantic import TypeAdapter, ValidationError

    from ..options import UtcDatetime

    try:
        return TypeAdapter(UtcDatetime).validate_python(value)
    except ValidationError as exc:
        fail(f"{flag}: {str(exc.errors()[0]['msg']).removeprefix('Value error, ')}", 2)


def parse_assignments(values: list[str] | str | None, flag: str) -> dict[str, float]:
    """``name=number`` pairs (comma-separated or repeated) as a dict; a bad one is one ``error:`` line and exit 2."""
    if not values:
        return {}
    items = [part.strip() for value in ([values] if isinstance(values, str) else values) for part in value.split(",")]
    out: dict[str, float] = {}
    for item in items:
        if not item:
            continue
        name, sep, number = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(number)
        except ValueError:
            fail(f"{flag}: expected NAME=NUMBER, got {item!r}", 2)
    return out


def _events_dir(events: Path | None, index_dir: Path | None) -> Path:
    if events is not None:
        return events
    return settings_from(index_dir=index_dir).events_path()


@app.command()
def compact(
    events: EventsOpt = None,
    index_dir: IndexDirOpt = None,
    now: Annotated[
        bool, typer.Option("--now", help="Also compact what today's log holds so far (normally only closed days).")
    ] = False,
) -> None:
    """Compact the event log of closed days into daily Parquet partitions (the service does it hourly).

    Safe to run at any time, also while the service appends and while another compaction runs: each event ends up in
    exactly one Parquet part.

    Example: recommender events compact --events /srv/related/index/events
    """
    folder = _events_dir(events, index_dir)
    if not folder.is_dir():
        fail(f"{folder}: no such events folder", 2)
    settings = settings_from(index_dir=index_dir)

    def go():
        from ..events.compact import compact as compact_log

        return compact_log(folder, grace=settings.events_compact_grace, include_open=now)

    report = run(go)
    typer.echo(report.summary())


@app.command("to-sessions")
def to_sessions(
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="sessions.jsonl to write.", show_default=False)],
    events: EventsOpt = None,
    index_dir: IndexDirOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    gap: Annotated[
        float, typer.Option(metavar="MINUTES", min=0.01, help="A pause longer than this starts a new session.")
    ] = 30.0,
    variant: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="Only the clicks of this variant (repeatable).")
    ] = None,
) -> None:
    """Turn readers' clicks into reading sessions (sessions.jsonl) for offline evaluation.

    A visitor's clicks in time order, cut where they pause longer than --gap: each click's source article, then
    the clicked one. Feed the file to `recommender evaluate --sessions`.

    Example: recommender events to-sessions --events DIR --out sessions.jsonl --variant control
    """
    folder = _events_dir(events, index_dir)
    if not folder.is_dir():
        fail(f"{folder}: no such events folder", 2)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")

    def go():
        from ..events.read import load_events
        from ..events.sessions import clicks_to_sessions, write_sessions

        table, _ = load_events(folder, since=start, until=end)
        sessions, summary = clicks_to_sessions(table, gap=gap * 60, variants=variant)
        write_sessions(out, sessions)
        return summary

    summary = run(go)
    typer.echo(f"{out}: {summary.line()}")


@app.command()
def simulate(
    visitors: Annotated[int, typer.Option(metavar="N", min=1, help="Synthetic visitors.")] = 1000,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the readers' choices.")] = 0,
    url: Annotated[
        str | None, typer.Option(metavar="URL", help="A running service (else in process on --index-dir).")
    ] = None,
    index_dir: IndexDirOpt = None,
    events: EventsOpt = None,
    articles: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="JSONL export with the ids and story labels (default: the demo corpus)."),
    ] = None,
    label_field: Annotated[str, typer.Option(metavar="NAME", help="Field naming an article's story.")] = "story_id",
    k: Annotated[int, typer.Option("-k", "--k", metavar="N", min=1, max=50, help="Items per box.")] = 6,
    p_same: Annotated[
        float, typer.Option(metavar="P", min=0, max=1, help="Click probability of an examined same-story item.")
    ] = 0.35,
    q_other: Annotated[
        float, typer.Option(metavar="Q", min=0, max=1, help="Click probability of any other examined item.")
    ] = 0.03,
    views: Annotated[float, typer.Option(metavar="N", min=1, help="Mean page views per visitor.")] = 3.0,
    heterogeneity: Annotated[
        float, typer.Option(metavar="SD", min=0, help="Spread of visitors' click propensity (mean 1).")
    ] = 0.5,
    click_scale: Annotated[
        list[str] | None,
        typer.Option(metavar="VARIANT=X", help="Multiply a variant's click probabilities (a planted CTR effect)."),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(metavar="VARIANT=SHARE", help="This share of a variant's visitors sends nothing (a planted SRM)."),
    ] = None,
) -> None:
    """Simulate readers with a known preference: they request related boxes with their visitor id, click with
    position bias (same story p, other q), and send impression and click events.

    Example: recommender events simulate --url http://127.0.0.1:8000 --visitors 2000 --seed 1
    """
    from importlib import resources

    from ..events.simulate import ReaderModel

    try:
        model = ReaderModel(
            p_same=p_same,
            q_other=q_other,
            views=views,
            heterogeneity=heterogeneity,
            click_scale=parse_assignments(click_scale, "--click-scale"),
            drop=parse_assignments(drop, "--drop"),
        )
    except ValueError as exc:
        fail(str(exc), 2)
    corpus = articles or Path(str(resources.files("recommender") / "data" / "demo_articles.jsonl"))
    settings = None if url else settings_from(index_dir=index_dir)
    if settings is not None:
        from index import IndexDirectory

        if IndexDirectory(settings.index_dir).current() is None:
            fail(f"no index published in {settings.index_dir}; run `recommender build` first (or give --url)", 2)

    def go():
        from ..events.simulate import HttpTransport, LocalTransport, load_stories
        from ..events.simulate import simulate as run_readers

        ids, stories = load_stories(corpus, label_field)
        if url:
            transport = HttpTransport(url)
        else:
            from ..events.log import EventLog
            from ..serving import LiveIndex

            local = settings.overridden(events_dir=events) if events is not None else settings
            live = LiveIndex(local)
            live.load()
            if not live.ready:
                fail(f"cannot simulate on {settings.index_dir}: {live.reason}", 2)
            transport = LocalTransport(live, EventLog(local.events_path()))
        return run_readers(transport, ids, stories, visitors=visitors, seed=seed, model=model, k=k)

    from ..events.simulate import SimulationError

    try:
        summary = run(go)
    except (ValueError, SimulationError) as exc:
        fail(str(exc), 1)
    typer.echo(summary.line())
