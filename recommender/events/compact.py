"""Compaction: the log's JSON lines into daily Parquet partitions (``date=YYYY-MM-DD/part-*.parquet``, by the
event's own time ``at``), exactly once, whatever crashes.

A job covers, for one received day, the bytes of each segment not yet compacted (complete lines only). Its id is a
digest of those ranges, and its part files are named after it, so running the same job twice writes the same
files. The steps, each atomic (temp file, fsync, rename):

1. record the job in the day's ``_state.json`` (``pending``) before writing anything;
2. write one part per event date, dropping duplicates within the job and against the keys of the parts already
   in that date (other jobs' parts: a resend that arrived after a restart, or on another day);
3. record the new offsets and clear ``pending``;
4. for a closed day (past midnight UTC plus a grace period for appends in flight), delete the segments whose
   every byte is in Parquet (a torn tail is kept aside in ``_log/damaged/`` first).

A crash before 1 leaves the log as it was; between 1 and 3 the next run finds ``pending`` and redoes that exact job
(same ranges, same part names, same content: the parts are replaced, not added); after 3 the segments are only
deleted. So no event is lost or written twice. Readers that open the folder while a job runs may see a part and its
still-uncompacted log range at once: :func:`recommender.events.read.load_events` drops such duplicates by key,
and any reader can (``SELECT DISTINCT`` on ``key``).

Runs under an flock (``_log/compact.lock``): the service's background thread and ``recommender events compact``
never run a job at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from index.persist import atomic_writer, fsync_dir

from .files import Columns, DayState, complete_end, keep_aside, parse_lines, read_range, received_days, segments
from .log import LOG_DIR

__all__ = ["CompactionReport", "Compactor", "compact", "part_name"]

logger = logging.getLogger(__name__)

#: Rows per Parquet row group: large enough for good compression, small enough to read a day in pieces.
ROW_GROUP = 256 * 1024


@dataclass
class CompactionReport:
    jobs: int = 0
    redone: int = 0
    events: int = 0
    written: int = 0
    duplicates: int = 0
    damaged: int = 0
    parts: int = 0
    segments_deleted: int = 0
    bytes_compacted: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"compacted {self.events} events from {self.bytes_compacted} log bytes into {self.parts} Parquet parts "
            f"({self.written} written, {self.duplicates} duplicates dropped, {self.damaged} damaged lines kept aside); "
            f"{self.segments_deleted} log segments deleted"
        )


def part_name(day: str, job_id: str) -> str:
    return f"part-{day}-{job_id}.parquet"


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    (root / LOG_DIR).mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOG_DIR / "compact.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _closed(day: str, now: float, grace: float) -> bool:
    end = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
    return now >= end.timestamp() + grace


def compact(
    root: Path,
    *,
    now: float | None = None,
    grace: float = 600.0,
    include_open: bool = False,
    step: Callable[[str], None] | None = None,
) -> CompactionReport:
    """Compact every closed received day (and with ``include_open`` also what today's segments hold so far).

    ``step`` is called after each durable step (tests inject crashes there)."""
    root = Path(root)
    report = CompactionReport()
    if not (root / LOG_DIR).is_dir():
        return report
    now = time.time() if now is None else now
    mark = step or (lambda _name: None)
    with _locked(root):
        for day, folder in received_days(root):
            state = DayState.load(folder)
            if state.pending is not None:
                report.redone += 1
                _run(root, day, folder, state, report, mark)
            closed = _closed(day, now, grace)
            if closed or include_open:
                ranges = {}
                for segment in segments(folder):
                    end, _ = complete_end(segment)
                    start = state.offsets.get(segment.name, 0)
                    if end > start:
                        ranges[segment.name] = [start, end]
                if ranges:
                    digest = hashlib.blake2b(repr((day, sorted(ranges.items()))).encode(), digest_size=8).hexdigest()
                    state.pending = {"id": digest, "ranges": ranges}
                    state.save()
                    mark("pending_saved")
                    _run(root, day, folder, state, report, mark)
            if closed:
                _delete_compacted(root, folder, state, report, mark)
    if report.jobs:
        logger.info("%s", report.summary())
    return report


def _run(
    root: Path, day: str, folder: Path, state: DayState, report: CompactionReport, mark: Callable[[str], None]
) -> None:
    import pyarrow.compute as pc

    job = state.pending
    assert job is not None
    job_id = str(job["id"])
    columns = Columns()
    for name, (start, end) in sorted(job["ranges"].items()):
        segment = folder / name
        data = read_range(segment, int(start), int(end))
        report.bytes_compacted += len(data)
        before = len(columns.damaged)
        parse_lines(data, int(start), into=columns)
        for offset, raw, reason in columns.damaged[before:]:
            kept = keep_aside(root, segment, offset, raw)
            logger.error("%s:%d: %s; kept in %s", segment, offset, reason, kept)
    report.damaged += len(columns.damaged)
    report.events += len(columns)
    table = columns.table()
    table = _first_of_each_key(table)
    within = len(columns) - table.num_rows
    dates = pc.strftime(table.column("at"), format="%Y-%m-%d")
    written = 0
    dropped = within
    for date in sorted(set(dates.to_pylist())):
        rows = table.filter(pc.equal(dates, date))
        partition = root / f"date={date}"
        target = partition / part_name(day, job_id)
        existing = _existing_keys(partition, exclude=target.name)
        if existing is not None and len(existing):
            fresh = rows.filter(pc.invert(pc.is_in(rows.column("key"), value_set=existing)))
            dropped += rows.num_rows - fresh.num_rows
            rows = fresh
        if rows.num_rows == 0:
            target.unlink(missing_ok=True)  # a redo of a job whose rows turned out to be duplicates
            continue
        rows = rows.take(pc.sort_indices(rows, sort_keys=[("at", "ascending"), ("visitor", "ascending")]))
        _write_part(target, rows)
        written += rows.num_rows
        report.parts += 1
        mark("part_written")
    report.written += written
    report.duplicates += dropped
    report.jobs += 1
    for name, (_, end) in job["ranges"].items():
        state.offsets[name] = int(end)
    state.pending = None
    state.save()
    mark("offsets_saved")


def _first_of_each_key(table: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return table
    numbered = table.append_column("_row", pa.array(range(table.num_rows), type=pa.int64()))
    firsts = numbered.group_by("key", use_threads=False).aggregate([("_row", "min")]).column("_row_min")
    return table.take(pc.sort_indices(firsts))


def _existing_keys(partition: Path, exclude: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [p for p in sorted(partition.glob("part-*.parquet")) if p.name != exclude]
    if not parts:
        return None
    return pa.concat_arrays([c for p in parts for c in pq.read_table(p, columns=["key"]).column("key").chunks])


def _write_part(target: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(target) as fh:
        pq.write_table(table, fh, compression="zstd", row_group_size=ROW_GROUP)
    fsync_dir(target.parent.parent)  # a new partition folder's name must be durable too


def _delete_compacted(
    root: Path, folder: Path, state: DayState, report: CompactionReport, mark: Callable[[str], None]
) -> None:
    """A closed day's segments whose complete lines are all in Parquet; a torn tail (never acknowledged) is kept
    aside first. Then the folder itself once nothing but its state is left."""
    removed = False
    for segment in segments(folder):
        end, size = complete_end(segment)
        if state.offsets.get(segment.name, 0) < end:  # (greater: a failed append was cut back after it was read)
            continue
        if size > end:
            torn = read_range(segment, end, size)
            kept = keep_aside(root, segment, end, torn)
            report.damaged += 1
            logger.error(
                "%s: unfinished last line of %d bytes (a writer died mid-append); kept in %s", segment, size - end, kept
            )
        segment.unlink()
        report.segments_deleted += 1
        removed = True
        mark("segment_deleted")
    if removed:
        fsync_dir(folder)
    if not segments(folder) and state.pending is None:
        state.path.unlink(missing_ok=True)
        for leftover in folder.iterdir():
            if leftover.name.startswith("."):  # a temp file of an interrupted atomic write
                leftover.unlink(missing_ok=True)
        try:
            folder.rmdir()
            fsync_dir(folder.parent)
        except OSError:
            pass


class Compactor:
    """A daemon thread that compacts closed days every ``interval`` seconds (the first run after ``first_delay``,
    so that a starting service loads its index first). Errors are logged and retried at the next run."""

    def __init__(self, root: Path, interval: float, grace: float, first_delay: float = 60.0) -> None:
        self.root = Path(root)
        self.interval = interval
        self.grace = grace
        self.first_delay = min(first_delay, interval)
        self.last: CompactionReport | None = None
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="events-compactor", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=0.5)  # a compaction in progress is crash-safe: never hold up shutdown

    def _run(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                self.last = compact(self.root, grace=self.grace)
            except Exception:
                self.errors += 1
                logger.exception("event compaction failed (retried in %.0f s)", self.interval)
