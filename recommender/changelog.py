"""The change log: the durable, ordered record of live changes (PUT/DELETE between nightly builds).

It is a write-ahead log: every accepted change is appended and fsynced before it is acknowledged, so it survives a crash. A service
replays the entries newer than its loaded version; the next build folds them in and records the last
sequence number it folded (``wal_seq`` in the manifest), after which they are compacted away.
Appends and compaction share an flock, so a build never drops an entry a service is writing.

An append either lands whole or not at all: a failed or short write (a full disk) is cut back off before the
error is raised, and a torn tail left by a process killed mid-write is cut off, under the lock, before the
next append (else the next entry would be glued to it and lost as one unreadable line).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from index import atomic_writer

from .article import Article, parse_article
from .errors import LiveWriteError, StorageFullError

__all__ = ["CHANGELOG_FILE", "Change", "ChangeLog", "fold", "latest"]

logger = logging.getLogger(__name__)
CHANGELOG_FILE = "live/wal.jsonl"


@dataclass(frozen=True)
class Change:
    """One logged change. ``seq`` numbers are never reused, also across compaction (see :meth:`ChangeLog.compact`)."""

    seq: int
    op: str  # "upsert" | "delete"
    article_id: str
    article: Article | None
    at: float


def latest(changes: Iterable[Change]) -> dict[str, Change]:
    """The last change of each article id, in log order: the one rule by which the log is read, by a build that
    folds it into a version and by a service that replays it on top of one."""
    final: dict[str, Change] = {}
    for change in changes:
        final.pop(change.article_id, None)  # re-insert: the dict's order is the order of each id's last change
        final[change.article_id] = change
    return final


def fold(articles: Iterable[Article], changes: Iterable[Change]) -> list[Article]:
    """``articles`` (an export) with ``changes`` applied: upserts replace or add, deletes remove."""
    by_id = {a.id: a for a in articles}
    for article_id, change in latest(changes).items():
        by_id.pop(article_id, None)
        if change.op == "upsert" and change.article is not None:
            by_id[article_id] = change.article
    return list(by_id.values())


class ChangeLog:
    """``live/wal.jsonl`` of an index directory: append (fsynced before it returns), read, compact."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / CHANGELOG_FILE
        self._lock_path = self.path.with_suffix(".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Only live/ is created: a missing index directory (removed under a running service) is an error to
        # report, not something to recreate half of.
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise LiveWriteError(
                errno.ENOENT, f"index directory {self.path.parent.parent} is missing; restore it or publish a build"
            ) from None
        except OSError as exc:
            raise _write_error(exc, self._lock_path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _last_seq(self) -> int:
        last = 0
        for entry in self._read():
            last = entry.seq
        return last

    def _read(self) -> Iterator[Change]:
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        with fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    # A torn final line: the writer died before fsync returned, so it was never acknowledged.
                    logger.warning("%s:%d: ignoring an unfinished entry", self.path, lineno)
                    break
                try:
                    data = json.loads(raw)
                    article = parse_article(data["article"], clean_html=False) if data["op"] == "upsert" else None
                    yield Change(int(data["seq"]), data["op"], data.get("id", ""), article, float(data.get("at", 0)))
                except (ValueError, KeyError, TypeError) as exc:
                    logger.error("%s:%d: unreadable entry skipped: %s", self.path, lineno, exc)

    def _append(self, record: dict[str, Any]) -> int:
        with self._locked():
            self._cut_torn_tail()
            seq = self._last_seq_cached() + 1
            record = {"seq": seq, "at": time.time(), **record}
            line = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise _write_error(exc, self.path) from None
            try:
                start = os.fstat(fd).st_size
                try:
                    view = memoryview(line)
                    while view:  # os.write may write part of the line (a nearly full disk) and return
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except OSError as exc:
                    # Nothing of an unacknowledged entry may stay: cut the file back to where it was.
                    try:
                        os.ftruncate(fd, start)
                        os.fsync(fd)
                    except OSError:
                        logger.exception("%s: could not cut back a failed append", self.path)
                    raise _write_error(exc, self.path) from None
            finally:
                os.close(fd)
            self._seq_cache = (seq, start + len(line))
            return seq

    def _cut_torn_tail(self) -> None:
        """Drop an unfinished last line (its writer died before fsync returned: never acknowledged).
        Caller holds the lock, so no live writer is mid-append."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
                return
            end = size
            while end > 0:  # scan back block by block for the last complete line
                block = os.pread(fd, min(65536, end), max(0, end - 65536))
                newline = block.rfind(b"\n")
                if newline >= 0:
                    end = end - len(block) + newline + 1
                    break
                end -= len(block)
            logger.warning("%s: cutting off an unfinished entry of %d bytes left by a crash", self.path, size - end)
            os.ftruncate(fd, end)
            os.fsync(fd)
            self._seq_cache = None
        finally:
            os.close(fd)

    def _last_seq_cached(self) -> int:
        # Re-reading the whole log on every append would be O(n^2); the cache is valid while the file
        # size is what we left it (a compaction by a build changes it).
        cached = getattr(self, "_seq_cache", None)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if cached and cached[1] == size:
            return cached[0]
        return self._last_seq()

    def size(self) -> int:
        """Bytes in the log now (0 when there is none): a cheap test for "someone appended"."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append_upsert(self, article: Article) -> int:
        return self._append({"op": "upsert", "id": article.id, "article": article.to_dict()})

    def append_delete(self, article_id: str) -> int:
        return self._append({"op": "delete", "id": article_id})

    def entries(self, after: int = 0) -> list[Change]:
        if not self.path.parent.is_dir():
            return []  # no live change logged yet (or the index directory is gone)
        with self._locked():
            return [e for e in self._read() if e.seq > after and e.op != "mark"]

    def snapshot(self) -> tuple[list[Change], int]:
        """All pending changes and the last sequence number, read under one lock (what a build folds in)."""
        with self._locked():
            entries = list(self._read())
        last = entries[-1].seq if entries else 0
        return [e for e in entries if e.op != "mark"], last

    def compact(self, upto: int) -> int:
        """Drop entries a published build has folded in; returns how many remain."""
        with self._locked():
            entries = list(self._read())
            if not entries:
                return 0
            keep = [e for e in entries if e.seq > upto and e.op != "mark"]
            if not keep:
                # Sequence numbers must never restart: a service compares them with the manifest's wal_seq.
                keep = [Change(max(upto, entries[-1].seq), "mark", "", None, time.time())]
            with atomic_writer(self.path) as fh:
                for e in keep:
                    rec: dict[str, Any] = {"seq": e.seq, "at": e.at, "op": e.op, "id": e.article_id}
                    if e.article is not None:
                        rec["article"] = e.article.to_dict()
                    fh.write(json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n")
            self._seq_cache = None
            return sum(1 for e in keep if e.op != "mark")


def _write_error(exc: OSError, path: Path) -> LiveWriteError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageFullError(exc.errno, f"no space left on the device of {path}; the change was not made")
    return LiveWriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}; the change was not made")
