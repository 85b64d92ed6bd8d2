"""Clicks into reading sessions: the ``sessions.jsonl`` ground truth that offline evaluation reads
(``recommender evaluate --sessions``, :func:`recommender.evaluation.sessions.qrels_from_sessions`).

A visitor's clicks, in time order, are cut into sessions wherever two clicks are more than ``gap`` seconds apart
(30 minutes by default, the usual web-analytics inactivity timeout). A session reads the source article of each
click and then the clicked item, so following the boxes A -> B -> C gives ``[A, B, C]`` (a source is not repeated
when it is the item read just before); opening two items from A's box gives ``[A, B, A, C]``, and the offline
ground truth counts A's re-read once. Impressions are not reads and are left out.

Mind what this ground truth rewards: readers can only click what a box showed them, and they click the top more
(position bias), so click sessions favour the ranking that served them. Use them to compare configurations close
to the served one, weigh them with editorial qrels, and prefer the sessions of a control variant (``variants``) or of
a period with a diversified ranking when comparing rankers far from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from index.persist import atomic_writer

__all__ = ["SessionSummary", "clicks_to_sessions", "write_sessions"]

DEFAULT_GAP = 30 * 60.0


@dataclass
class SessionSummary:
    clicks: int
    visitors: int
    sessions: int
    reads: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def line(self) -> str:
        return f"{self.sessions} sessions of {self.visitors} visitors from {self.clicks} clicks ({self.reads} reads)"


def clicks_to_sessions(
    table: Any, *, gap: float = DEFAULT_GAP, variants: Sequence[str] | None = None
) -> tuple[list[dict[str, Any]], SessionSummary]:
    """Sessions (``{"session_id", "article_ids"}``) from the clicks of an events table (see
    :func:`recommender.events.read.load_events`), optionally only those of ``variants``. Session ids are
    ``<visitor>/<n>``, n counting a visitor's sessions from 0 in time order."""
    import pyarrow.compute as pc

    if gap <= 0:
        raise ValueError(f"gap must be positive, got {gap!r}")
    clicks = table.filter(pc.equal(table.column("type"), "click"))
    if variants:
        clicks = clicks.filter(pc.is_in(clicks.column("variant"), value_set=_strings(variants)))
    order = pc.sort_indices(
        clicks, sort_keys=[("visitor", "ascending"), ("at", "ascending"), ("position", "ascending")]
    )
    clicks = clicks.take(order)
    visitors = clicks.column("visitor").to_pylist()
    sources = clicks.column("source_id").to_pylist()
    items = clicks.column("item_id").to_pylist()
    times = clicks.column("at").cast("int64").to_pylist()
    sessions: list[dict[str, Any]] = []
    limit = gap * 1000
    previous_visitor: str | None = None
    previous_at = 0
    number = 0
    reads: list[str] = []
    for visitor, source, item, at in zip(visitors, sources, items, times):
        if visitor != previous_visitor or at - previous_at > limit:
            if reads:
                sessions.append({"session_id": f"{previous_visitor}/{number}", "article_ids": reads})
                number += 1
            if visitor != previous_visitor:
                number = 0
            reads = []
        if not reads or reads[-1] != source:
            reads.append(source)
        reads.append(item)
        previous_visitor, previous_at = visitor, at
    if reads:
        sessions.append({"session_id": f"{previous_visitor}/{number}", "article_ids": reads})
    summary = SessionSummary(
        clicks=len(items),
        visitors=len(set(visitors)),
        sessions=len(sessions),
        reads=sum(len(s["article_ids"]) for s in sessions),
    )
    return sessions, summary


def _strings(values: Iterable[str]) -> Any:
    import pyarrow as pa

    return pa.array(list(values), type=pa.string())


def write_sessions(path: Path, sessions: Iterable[dict[str, Any]]) -> Path:
    """``sessions.jsonl``, written atomically (a reader never sees half of it)."""
    path = Path(path)
    with atomic_writer(path) as fh:
        for session in sessions:
            fh.write(orjson.dumps(session) + b"\n")
    return path
