"""Live changes in a serving process: validate -> change log (fsynced) -> apply to the served snapshot.

Every change is appended to the change log before it is acknowledged, then applied in memory under the snapshot's
lock, in log order (:attr:`ServedVersion.order_lock`). Sequence numbers double as the "live-change counter" in cache
keys and ETags, so a restarted process that replayed the same log gives the same ETags. Several worker processes
share one log: each catches up on what the others appended before applying its own change, and on every poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..article import Article
from ..changelog import ChangeLog
from ..editorial import Editorial, EditorialChange
from ..errors import ArticleNotFoundError
from .snapshot import Snapshot
from .versions import ServedVersion

if TYPE_CHECKING:
    from ..engine import Recommender

__all__ = ["LiveWrites"]


class LiveWrites:
    def __init__(self, served: ServedVersion, log: ChangeLog, on_change: Callable[[], None]) -> None:
        self.served = served
        self.log = log
        self._on_change = on_change
        self._log_size: int | None = None

    def upsert(self, article: Article) -> bool:
        """Insert or replace one (already validated) article; True when it is new. Logged and fsynced first.

        The model runs before any lock is taken (reads and other writes go on meanwhile); the log entry carries
        the vector, so a restart replays it without the model."""
        snap = self.served.snapshot
        rec = snap.recommender
        vectors, signatures = rec.prepare([article])
        key = rec.embedding_key
        with self.served.order_lock:
            snap = self.served.snapshot
            if snap.recommender.embedding_key != key:  # a reload swapped in a version embedded another way
                vectors, signatures = snap.recommender.prepare([article])
                key = snap.recommender.embedding_key
            self._catch_up_if_grown()
            seq = self.log.append_upsert(article, vector=vectors[0], signature=signatures[0], embedding=key)
            return self._apply(snap, seq, lambda rec: rec.add_prepared([article], vectors, signatures)[0])

    def delete(self, article_id: str) -> bool:
        """Remove one article; an unknown id raises ArticleNotFoundError and writes nothing."""
        with self.served.order_lock:
            snap = self.served.snapshot
            self._catch_up_if_grown()
            if article_id not in snap.recommender:
                raise ArticleNotFoundError(article_id)
            seq = self.log.append_delete(article_id)
            return self._apply(snap, seq, lambda rec: rec.delete(article_id))

    def change_editorial(self, change: EditorialChange) -> Editorial:
        """Pin, unpin, block or unblock: logged and fsynced first, applied at once (every cached box changes)."""
        with self.served.order_lock:
            snap = self.served.snapshot
            self._catch_up_if_grown()
            seq = self.log.append_editorial(change)
            self._apply(snap, seq, lambda rec: rec.change_editorial(change) is not None)
            return snap.recommender.editorial

    def catch_up(self) -> int:
        """Apply log entries appended by another process (another worker) since we last looked."""
        if self.log.size() == self._log_size:
            return 0
        with self.served.order_lock:
            return self._catch_up_locked()

    def _catch_up_if_grown(self) -> None:
        if self.log.size() != self._log_size:
            self._catch_up_locked()

    def _catch_up_locked(self, before: int | None = None) -> int:
        """Replay entries newer than the served state (and older than ``before``); caller holds the order lock."""
        snap = self.served.current
        if snap is None:
            return 0
        entries = [e for e in self.log.entries(after=snap.seq) if before is None or e.seq < before]
        if entries:
            with snap.lock.write():
                snap.recommender.replay(entries)
                snap.seq = max(snap.seq, entries[-1].seq)
                snap.pending += len(entries)
            self._on_change()
        if before is None:
            self._log_size = self.log.size()
        return len(entries)

    def _apply(self, snap: Snapshot, seq: int, change: Callable[[Recommender], bool]) -> bool:
        if seq != snap.seq + 1:
            self._catch_up_locked(before=seq)  # another process logged changes between our catch-up and append
        with snap.lock.write():
            result = change(snap.recommender)
            snap.seq = seq
            snap.pending += 1
        self._on_change()
        self._log_size = self.log.size()
        return result
