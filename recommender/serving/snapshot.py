"""A snapshot: one loaded version plus the live changes applied to it, and the one lock that owns its changes.

Reads take the current snapshot (an atomic attribute read) and work on it to the end, so a reload that swaps in a
new snapshot never fails a request in flight. Within one snapshot, reads and live changes never overlap: the
catalog grows several arrays one after another on an upsert, and a read between two of those steps would see
them out of step. :attr:`Snapshot.lock` is that lock, and the only one that guards the catalog.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Recommender


__all__ = ["ReadWriteLock", "Snapshot"]


class ReadWriteLock:
    """Many readers or one writer, writers first (a burst of reads cannot starve a live change)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class Snapshot:
    """What one request works on: a loaded version plus the live changes applied to it so far."""

    recommender: Recommender
    version: str
    loaded_at: float
    #: last change-log sequence number applied (the build's own ``wal_seq`` when none since)
    seq: int
    #: live changes applied on top of the version (replayed at load or received since)
    pending: int = 0
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)

    @property
    def state(self) -> str:
        """Identifies exactly what this snapshot serves: the version and the log position."""
        return f"{self.version}:{self.seq}"
