"""The event log: append-only JSON lines, fsynced before a batch is acknowledged, one segment file per process and
UTC day.

Layout under the events folder (``RECOMMENDER_EVENTS_DIR``, default ``<index_dir>/events``)::

    _log/received=2026-11-30/<host>-<pid>-<start>.jsonl    one line per event, as received (this module)
    _log/received=2026-11-30/_state.json                   what compaction has turned into Parquet (compact.py)
    date=2026-11-30/part-<received day>-<job>.parquet      the data team's copy (compact.py), Hive-style

Names starting with ``_`` or ``.`` are skipped by pyarrow, pandas, Spark and DuckDB's hive reader, so the folder
itself reads as one Parquet dataset partitioned by ``date``.

Each process writes only its own segments, so appends need no lock and a segment torn by a crash (a process killed
inside ``write()``) is never appended to again: its unfinished last line was never acknowledged and is left out
(and counted) when the segment is read. A failed or short write (a full disk) is cut back off before the error
is raised, so the log holds whole batches only.

Group commit: a batch is acknowledged only after an fsync, which takes milliseconds here (4-5 ms median on the
development machine's disk), so one fsync per batch would cap one process near 200 batches/s. Concurrent
:meth:`EventLog.append` calls share one: the first caller writes and syncs everything queued by then while the
others wait for its result. Duplicates (a retried beacon) are dropped against the keys of recently written events
(a bounded set, two generations) and within the group; compaction drops any that got through (e.g. a retry after
a restart).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from index.persist import append_whole, fsync_dir

from ..errors import LiveWriteError
from .schema import Event, format_ms, key_of

__all__ = ["LOG_DIR", "Appended", "EventLog", "received_dir", "utc_day"]

logger = logging.getLogger(__name__)

LOG_DIR = "_log"


def utc_day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d")


def received_dir(root: Path, day: str) -> Path:
    return Path(root) / LOG_DIR / f"received={day}"


@dataclass(frozen=True)
class Appended:
    """What became of one batch: ``accepted`` events stored, ``duplicates`` dropped as already stored."""

    accepted: int
    duplicates: int


class _RecentKeys:
    """Keys of the last ``size / 2`` to ``size`` stored events (two generations of sets: O(1), no per-key order)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def __contains__(self, key: int) -> bool:
        return key in self._current or key in self._previous

    def add(self, key: int) -> None:
        if self.size <= 0:
            return
        self._current.add(key)
        if len(self._current) >= max(1, self.size // 2):
            self._previous, self._current = self._current, set()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)


@dataclass
class _Ticket:
    keys: list[int]
    bodies: list[bytes]
    result: Appended | None = None
    error: BaseException | None = None
    done: bool = False
    new_keys: list[int] = field(default_factory=list)


def _segment_name(started_ns: int) -> str:
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}-{started_ns:x}.jsonl"


class EventLog:
    """The appending side of an events folder, one per process. Thread-safe; :meth:`append` blocks until the batch
    is durable (or raises :class:`~recommender.errors.LiveWriteError` having stored nothing of it)."""

    def __init__(self, directory: Path, *, dedup_keys: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.clock = clock
        self._cond = threading.Condition()
        self._queue: list[_Ticket] = []
        self._writing = False
        self._seen = _RecentKeys(dedup_keys)
        self._fd: int | None = None
        self._day: str | None = None
        self._path: Path | None = None
        self._size = 0
        #: counters since start (exported as metrics)
        self.accepted = 0
        self.duplicates = 0
        self.batches = 0
        self.commits = 0
        self.failed = 0

    @property
    def segment(self) -> Path | None:
        """The segment this process appends to now (None before the first event)."""
        return self._path

    def append(self, events: Sequence[Event]) -> Appended:
        keys = [key_of(e) for e in events]
        bodies = [orjson.dumps(e.record())[:-1] for e in events]  # the closing brace comes with received_at
        ticket = _Ticket(keys, bodies)
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done:
                if self._writing:
                    self._cond.wait()
                    continue
                self._writing = True  # this caller commits everything queued so far, its own batch included
                group, self._queue = self._queue, []
                self._cond.release()
                try:
                    self._commit(group)
                finally:
                    self._cond.acquire()
                    self._writing = False
                    for other in group:
                        if not other.done:  # only a bug in _commit gets here: never leave a caller waiting
                            other.error = other.error or RuntimeError("event log commit failed")
                            other.done = True
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result

    def _commit(self, group: list[_Ticket]) -> None:
        now = self.clock()
        received = b'"received_at":"' + format_ms(int(now * 1000)).encode() + b'"}\n'
        fresh: set[int] = set()
        lines: list[bytes] = []
        for ticket in group:
            duplicates = 0
            for key, body in zip(ticket.keys, ticket.bodies):
                if key in fresh or key in self._seen:
                    duplicates += 1
                    continue
                fresh.add(key)
                ticket.new_keys.append(key)
                lines.append(body + b"," + received)
            ticket.result = Appended(len(ticket.new_keys), duplicates)
        try:
            if lines:
                self._write(b"".join(lines), now)
        except LiveWriteError as exc:
            self.failed += sum(len(t.keys) for t in group)
            for ticket in group:
                ticket.error, ticket.result, ticket.done = exc, None, True
            return
        for key in fresh:
            self._seen.add(key)
        self.commits += 1
        for ticket in group:
            self.batches += 1
            self.accepted += ticket.result.accepted if ticket.result else 0
            self.duplicates += ticket.result.duplicates if ticket.result else 0
            ticket.done = True

    # -- files -------------------------------------------------------------------------------------
    def _open(self, day: str) -> None:
        self.close()
        folder = received_dir(self.directory, day)
        try:
            self.directory.mkdir(exist_ok=True)  # its parent must exist: a missing index folder is not recreated
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / _segment_name(time.time_ns())
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            raise LiveWriteError(
                errno.ENOENT, f"the parent of the events folder {self.directory} is missing; the events were not stored"
            ) from None
        except OSError as exc:
            raise _write_error(exc, folder) from None
        try:
            # The new file's name must survive a crash as well as its content: sync the folders that changed.
            for parent in (folder, folder.parent, self.directory):
                fsync_dir(parent)
        except OSError as exc:
            os.close(fd)
            raise _write_error(exc, folder) from None
        self._fd, self._day, self._path, self._size = fd, day, path, 0
        logger.info("event log segment %s", path)

    def _write(self, data: bytes, now: float) -> None:
        day = utc_day(now)
        if self._fd is None or day != self._day:
            self._open(day)
        assert self._fd is not None and self._path is not None
        fd, start, path = self._fd, self._size, self._path
        try:
            append_whole(fd, data, start, path)  # nothing of an unacknowledged batch stays
        except OSError as exc:
            # Never append to this segment again: a compaction of today's log (``compact --now``) may have read lines
            # of the failed batch already, and its recorded offset must never point past bytes still to come.
            self.close()
            raise _write_error(exc, path) from None
        self._size = start + len(data)

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = self._day = self._path = None
        self._size = 0


def _write_error(exc: OSError, path: Path) -> LiveWriteError:
    return LiveWriteError.of(exc, path, "the events were not stored")
