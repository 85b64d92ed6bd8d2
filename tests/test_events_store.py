"""The event log and its Parquet partitions: durable appends, dedup, group commit, exactly-once compaction whatever
step a crash interrupts, torn tails, and files that pyarrow, pandas and DuckDB read."""

from __future__ import annotations

import errno
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from recommender.errors import StorageFullError
from recommender.events.compact import compact
from recommender.events.files import received_days
from recommender.events.log import EventLog
from recommender.events.read import load_events
from recommender.events.schema import Limits, parse_batch

DAY1 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC).timestamp()  # received on the 28th
DAY2 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC).timestamp()
LATER = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()  # both days closed


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _events(n: int, *, at: str = "2026-11-28T21:00:00.000Z", visitor: str = "v1", start: int = 0, now: float = DAY1):
    records = [
        {
            "type": "click" if i % 7 == 6 else "impression",
            "source_id": f"demo-{i % 13:03d}",
            "item_id": f"demo-{(i * 5) % 17:03d}",
            "position": 1 + i % 6,
            "request_id": f"req{i // 6}",
            "variant": "control" if i % 2 else "b",
            "visitor": visitor,
            "at": at[:-4] + f"{(start + i) % 1000:03d}Z",
        }
        for i in range(start, start + n)
    ]
    return parse_batch({"events": records}, Limits(max_events=10_000, now=now))


def _keys(table) -> list[int]:
    return table.column("key").to_pylist()


def test_appended_events_are_durable_lines_and_read_back(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events", clock=Clock(DAY1))
    assert log.append(_events(20)).accepted == 20
    [(day, folder)] = received_days(tmp_path / "events")
    assert day == "2026-11-28"
    [segment] = folder.glob("*.jsonl")
    lines = segment.read_bytes().splitlines()
    assert len(lines) == 20 and json.loads(lines[0])["received_at"] == "2026-11-28T22:00:00.000Z"
    table, stats = load_events(tmp_path / "events")
    assert table.num_rows == 20 and stats.log_events == 20 and stats.parquet_events == 0


def test_a_resent_batch_is_dropped_at_once_and_after_a_restart_by_compaction(tmp_path: Path) -> None:
    root = tmp_path / "events"
    log = EventLog(root, clock=Clock(DAY1))
    batch = _events(12)
    assert log.append(batch).accepted == 12
    again = log.append(batch)
    assert (again.accepted, again.duplicates) == (0, 12)
    log.close()
    restarted = EventLog(root, clock=Clock(DAY1))  # a fresh process has no memory of recent keys
    assert restarted.append(batch).accepted == 12
    table, stats = load_events(root)
    assert table.num_rows == 12 and stats.duplicates == 12  # readers drop what got through
    report = compact(root, now=LATER)
    assert (report.events, report.written, report.duplicates) == (24, 12, 12)
    parquet = pq.read_table(root)
    assert parquet.num_rows == 12 and len(set(_keys(parquet))) == 12
    assert not list((root / "_log").glob("received=*"))  # a closed, fully compacted day leaves no log behind


def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events", clock=Clock(DAY1))
    batches = [_events(20, visitor=f"v{t}") for t in range(16)]
    threads = [threading.Thread(target=log.append, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.accepted == 320 and log.batches == 16
    assert log.commits <= 16
    table, _ = load_events(tmp_path / "events")
    assert table.num_rows == 320


def test_a_failed_write_is_cut_back_and_nothing_of_the_batch_is_stored(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "events"
    log = EventLog(root, clock=Clock(DAY1))
    log.append(_events(5))
    segment = log.segment
    real_write = os.write

    def half_then_full(fd, data):  # the disk fills up half way through the batch
        if len(data) > 100:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(StorageFullError, match="no space left on the device of .*; the events were not stored"):
        log.append(_events(10, start=100))
    monkeypatch.setattr(os, "write", real_write)
    assert log.failed == 10
    assert segment.read_bytes().count(b"\n") == 5 and segment.read_bytes().endswith(b"\n")
    assert log.append(_events(10, start=100)).accepted == 10  # not remembered as stored: accepted when resent
    assert log.segment != segment  # never appended to after a cut-back
    assert load_events(root)[0].num_rows == 15


def test_a_missing_parent_folder_is_not_recreated(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "gone" / "events", clock=Clock(DAY1))
    with pytest.raises(OSError, match="the parent of the events folder .* is missing; the events were not stored"):
        log.append(_events(1))
    assert not (tmp_path / "gone").exists()


def test_compaction_partitions_by_event_date_and_keeps_open_days(tmp_path: Path) -> None:
    root = tmp_path / "events"
    clock = Clock(DAY1)
    log = EventLog(root, clock=clock)
    log.append(_events(10, at="2026-11-28T21:00:00.000Z"))
    log.append(_events(4, at="2026-11-27T08:00:00.000Z", visitor="late"))  # a beacon that arrived a day late
    clock.now = DAY2
    log.append(_events(6, at="2026-11-29T09:00:00.000Z", visitor="v2", now=DAY2))
    # on the 29th at 10:00, the 28th is closed (past midnight + 10 minutes) and the 29th is open
    report = compact(root, now=DAY2)
    assert (report.jobs, report.written, report.segments_deleted) == (1, 14, 1)
    assert sorted(p.name for p in root.glob("date=*")) == ["date=2026-11-27", "date=2026-11-28"]
    assert [d for d, _ in received_days(root)] == ["2026-11-29"]
    table, stats = load_events(root)  # Parquet plus the open day's log
    assert (table.num_rows, stats.parquet_events, stats.log_events) == (20, 14, 6)
    # --now compacts the open day so far; later appends go to the next job, and nothing is written twice
    compact(root, now=DAY2, include_open=True)
    log.append(_events(3, at="2026-11-29T09:30:00.000Z", visitor="v3", now=DAY2))
    compact(root, now=DAY2, include_open=True)
    parquet = pq.read_table(root)
    assert parquet.num_rows == 23 and len(set(_keys(parquet))) == 23
    assert len(list((root / "date=2026-11-29").glob("part-*.parquet"))) == 2
    assert load_events(root)[0].num_rows == 23
    window, _ = load_events(root, since=datetime(2026, 11, 28, tzinfo=UTC), until=datetime(2026, 11, 29, tzinfo=UTC))
    assert window.num_rows == 10


@pytest.mark.parametrize("crash_after", ["pending_saved", "part_written", "offsets_saved", "segment_deleted"])
def test_a_crash_at_any_step_of_compaction_loses_and_duplicates_nothing(tmp_path: Path, crash_after: str) -> None:
    root = tmp_path / "events"
    log = EventLog(root, clock=Clock(DAY1))
    for n in range(3):
        log.append(_events(30, visitor=f"v{n}", at="2026-11-28T2" + str(n) + ":00:00.000Z"))
    log.append(_events(5, visitor="early", at="2026-11-27T23:00:00.000Z"))
    expected = sorted(_keys(load_events(root)[0]))
    log.close()

    class Crash(Exception):
        pass

    def step(name: str) -> None:
        if name == crash_after:
            raise Crash(name)

    with pytest.raises(Crash):
        compact(root, now=LATER, step=step)
    # meanwhile a reader sees every event exactly once
    assert sorted(_keys(load_events(root)[0])) == expected
    report = compact(root, now=LATER)
    if crash_after in ("pending_saved", "part_written"):
        assert report.redone == 1
    parquet = pq.read_table(root)
    assert sorted(_keys(parquet)) == expected
    assert not list((root / "_log").glob("received=*"))
    assert compact(root, now=LATER).jobs == 0  # nothing left to do


def test_a_torn_tail_is_never_read_and_is_kept_aside(tmp_path: Path) -> None:
    root = tmp_path / "events"
    log = EventLog(root, clock=Clock(DAY1))
    log.append(_events(8))
    segment = log.segment
    log.close()
    with open(segment, "ab") as fh:
        fh.write(b'{"type":"impression","source_id":"demo-0')  # a process killed inside write()
    table, _ = load_events(root)
    assert table.num_rows == 8
    report = compact(root, now=LATER)
    assert report.written == 8 and report.damaged == 1
    [kept] = (root / "_log" / "damaged").iterdir()
    assert kept.read_bytes() == b'{"type":"impression","source_id":"demo-0'


def test_an_unreadable_line_is_counted_and_kept_aside(tmp_path: Path) -> None:
    root = tmp_path / "events"
    log = EventLog(root, clock=Clock(DAY1))
    log.append(_events(3))
    with open(log.segment, "ab") as fh:
        fh.write(b"not json\n")
    log.append(_events(3, start=50))
    table, stats = load_events(root)
    assert (table.num_rows, stats.damaged) == (6, 1)
    report = compact(root, now=LATER)
    assert (report.written, report.damaged) == (6, 1)
    assert [p.read_bytes() for p in (root / "_log" / "damaged").iterdir()] == [b"not json\n"]


def test_the_partitions_read_as_one_dataset_with_standard_tools(tmp_path: Path) -> None:
    root = tmp_path / "events"
    log = EventLog(root, clock=Clock(DAY1))
    log.append(_events(10, at="2026-11-28T21:00:00.000Z"))
    log.append(_events(4, at="2026-11-27T08:00:00.000Z", visitor="late"))
    compact(root, now=LATER)
    import pyarrow.dataset as ds

    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == 14 and "date" in table.column_names  # _log/ is ignored (leading underscore)
    assert table.schema.field("at").type == __import__("pyarrow").timestamp("ms", tz="UTC")
    assert pc.sum(pc.equal(table.column("type"), "click")).as_py() == 1
    pandas = pytest.importorskip("pandas", reason="pip install -e '.[analysis]'")
    frame = pandas.read_parquet(root)
    assert len(frame) == 14 and set(frame["date"].astype(str)) == {"2026-11-27", "2026-11-28"}
    duckdb = pytest.importorskip("duckdb", reason="pip install -e '.[analysis]'")
    rows = duckdb.sql(
        f"SELECT date, count(*), count(DISTINCT key) FROM read_parquet('{root}/*/*.parquet', hive_partitioning = true) "
        "GROUP BY date ORDER BY date"
    ).fetchall()
    assert [(str(d), n, k) for d, n, k in rows] == [("2026-11-27", 4, 4), ("2026-11-28", 10, 10)]
