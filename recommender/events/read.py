"""Reading an events folder as one table: the Parquet partitions plus what the log holds that is not compacted yet
(today's events), each event once.

Other tools read the Parquet part directly (``pandas.read_parquet(DIR)``, ``duckdb`` with ``hive_partitioning``,
Spark): they see compacted events only, and should ``DISTINCT`` on ``key`` (see compact.py for when a part and its
log range can be seen together).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .files import Columns, arrow_schema, iter_log_ranges, parse_lines, partitions, read_range

__all__ = ["LoadStats", "load_events"]


@dataclass
class LoadStats:
    parts: int = 0
    parquet_events: int = 0
    log_events: int = 0
    duplicates: int = 0
    damaged: int = 0
    events: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _day(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def load_events(root: Path, *, since: datetime | None = None, until: datetime | None = None) -> tuple[Any, LoadStats]:
    """Events with ``since <= at < until`` (either bound optional), duplicates dropped (the first copy kept), in
    the columns of :func:`recommender.events.files.arrow_schema`. Raises FileNotFoundError for a missing folder."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such events folder")
    stats = LoadStats()
    schema = arrow_schema()
    tables = []
    first = _day(since) if since else None
    last = _day(until) if until else None
    for date, folder in partitions(root):
        if (first and date < first) or (last and date > last):
            continue
        for part in sorted(folder.glob("part-*.parquet")):
            table = pq.read_table(part, schema=schema)
            tables.append(table)
            stats.parts += 1
            stats.parquet_events += table.num_rows
    columns = Columns()
    for day, segment, start, end in iter_log_ranges(root):
        # A day's log holds events received that day: up to days old (RECOMMENDER_EVENTS_MAX_AGE_DAYS), or minutes
        # ahead of it. Only a day that ended before the window began cannot hold any of the window's events.
        if since is not None and day < _day(since - timedelta(days=1)):
            continue
        parse_lines(read_range(segment, start, end), start, into=columns)
    stats.damaged = len(columns.damaged)
    stats.log_events = len(columns)
    tables.append(columns.table())
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    if since is not None:
        table = table.filter(pc.greater_equal(table.column("at"), pa.scalar(since, type=pa.timestamp("ms", tz="UTC"))))
    if until is not None:
        table = table.filter(pc.less(table.column("at"), pa.scalar(until, type=pa.timestamp("ms", tz="UTC"))))
    before = table.num_rows
    if before:
        numbered = table.append_column("_row", pa.array(range(before), type=pa.int64()))
        firsts = numbered.group_by("key", use_threads=False).aggregate([("_row", "min")]).column("_row_min")
        table = table.take(pc.sort_indices(firsts))
    stats.duplicates = before - table.num_rows
    stats.events = table.num_rows
    return table, stats
