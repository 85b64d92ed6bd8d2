"""The change log: the durable, ordered record of live changes (PUT/DELETE between nightly builds).

It is a write-ahead log: every accepted change is appended and fsynced before it is acknowledged, so it survives a
crash. A service replays the entries newer than its loaded version; the next build folds them in and records the
last sequence number it folded (``wal_seq`` in the manifest), after which they are compacted away. Appends and
compaction share an flock, so a build never drops an entry a service is writing.

An upsert carries the vector and MinHash signature it was given when it was accepted (with the embedding key they
were made under): a restart replays the log without calling the model, and re-embeds only entries whose key does
not match the version it replays onto.

An append either lands whole or not at all: a failed or short write (a full disk) is cut back off before the
error is raised, and a torn tail left by a process killed mid-write is cut off, under the lock, before the
next append (else the next entry would be glued to it and lost as one unreadable line). Damage is never silent:
a torn tail or an unreadable line is counted (:attr:`ChangeLog.damage`) and its bytes are kept aside in
``live/damaged/`` for inspection.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.persist import append_whole, atomic_writer

from .article import Article, parse_article
from .damage import damaged_copy
from .editorial import Editorial, EditorialChange
from .errors import FieldError, LiveWriteError

__all__ = ["CHANGELOG_FILE", "DAMAGED_DIR", "Change", "ChangeLog", "Damage", "fold", "fold_editorial", "latest"]

logger = logging.getLogger(__name__)
CHANGELOG_FILE = "live/wal.jsonl"
#: How every entry this class writes begins: its sequence number can be read without parsing the line.
_SEQ_PREFIX = re.compile(rb'\{"seq": (\d{1,18}),')
DAMAGED_DIR = "live/damaged"


@dataclass(frozen=True)
class Change:
    """One logged change. ``seq`` numbers are never reused, also across compaction (see :meth:`ChangeLog.compact`).

    An upsert may carry ``vector`` and ``signature`` (made under ``embedding``, a version's embedding key)."""

    seq: int
    op: str  # "upsert" | "delete" | "editorial" | "mark"
    article_id: str  # for an editorial change: its key (what it is about)
    article: Article | None
    at: float
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    signature: np.ndarray | None = field(default=None, compare=False, repr=False)
    embedding: str | None = None
    editorial: EditorialChange | None = None


@dataclass(frozen=True)
class Damage:
    """An entry of the log that could not be read: where, why, and where its bytes were kept."""

    line: int
    offset: int
    reason: str
    kept_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "offset": self.offset, "reason": self.reason, "kept_at": self.kept_at}


def latest(changes: Iterable[Change]) -> dict[tuple[str, str], Change]:
    """The last change of each article id (and of each editorial key), in log order: the one rule by which the log
    is read, by a build that folds it into a version and by a service that replays it on top of one."""
    final: dict[tuple[str, str], Change] = {}
    for change in changes:
        key = ("editorial" if change.op == "editorial" else "article", change.article_id)
        final.pop(key, None)  # re-insert: the dict's order is the order of each key's last change
        final[key] = change
    return final


def fold(articles: Iterable[Article], changes: Iterable[Change]) -> list[Article]:
    """``articles`` (an export) with ``changes`` applied: upserts replace or add, deletes remove."""
    by_id = {a.id: a for a in articles}
    for (kind, article_id), change in latest(changes).items():
        if kind != "article":
            continue
        by_id.pop(article_id, None)
        if change.op == "upsert" and change.article is not None:
            by_id[article_id] = change.article
    return list(by_id.values())


def fold_editorial(editorial: Editorial, changes: Iterable[Change]) -> Editorial:
    """``editorial`` with the logged editorial changes applied, in log order."""
    return editorial.applied(c.editorial for c in changes if c.op == "editorial" and c.editorial is not None)


def _array(text: Any, dtype: Any) -> np.ndarray | None:
    if not isinstance(text, str):
        return None
    return np.frombuffer(base64.b64decode(text, validate=True), dtype=dtype).copy()


def _encode(array: np.ndarray, dtype: Any) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _parse(data: Any) -> Change:
    op = data["op"]
    if op not in ("upsert", "delete", "editorial", "mark"):
        raise ValueError(f"unknown op {op!r}")
    article = parse_article(data["article"], clean_html=False) if op == "upsert" else None
    editorial = EditorialChange.from_dict(data["editorial"]) if op == "editorial" else None
    return Change(
        int(data["seq"]),
        op,
        data.get("id", ""),
        article,
        float(data.get("at", 0)),
        vector=_array(data.get("vector"), "<f4"),
        signature=_array(data.get("signature"), "<u4"),
        embedding=data.get("embedding") if isinstance(data.get("embedding"), str) else None,
        editorial=editorial,
    )


class ChangeLog:
    """``live/wal.jsonl`` of an index directory: append (fsynced before it returns), read, compact."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / CHANGELOG_FILE
        self.damaged_dir = Path(index_dir) / DAMAGED_DIR
        self._lock_path = self.path.with_suffix(".lock")
        self._seq_cache: tuple[int, int] | None = None
        self._damage: dict[int, Damage] = {}  # by byte offset: the same damaged line is counted once
        self._damage_lock = threading.Lock()

    @property
    def damage(self) -> list[Damage]:
        """Entries found unreadable (and torn tails cut off) since this object was made, oldest first."""
        with self._damage_lock:
            return sorted(self._damage.values(), key=lambda d: (d.offset, d.line))

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

    # -- reading -----------------------------------------------------------------------------------
    def _scan(self, after: int = 0) -> Iterator[tuple[Change, bytes]]:
        """Every readable entry with its raw line; unreadable ones are recorded as damage and skipped. Entries at
        or before ``after`` are skipped unparsed when their line starts the way this class writes them (a restart
        and a reload's final catch-up then cost one pass over the new entries only)."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        with fh:
            offset = 0
            for lineno, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    # A torn final line: the writer died before fsync returned, so it was never acknowledged.
                    self._record_damage(lineno, offset, raw, "unfinished last entry (a writer died mid-append)")
                    break
                if after:
                    head = _SEQ_PREFIX.match(raw)
                    if head is not None and int(head.group(1)) <= after:
                        offset += len(raw)
                        continue
                try:
                    yield _parse(json.loads(raw)), raw
                except (ValueError, KeyError, TypeError) as exc:
                    self._record_damage(lineno, offset, raw, f"unreadable entry: {exc}")
                offset += len(raw)

    def _record_damage(self, lineno: int, offset: int, raw: bytes, reason: str) -> None:
        with self._damage_lock:
            if offset in self._damage:
                return
            kept = self._keep_aside(offset, raw)
            self._damage[offset] = Damage(lineno, offset, reason[:300], kept)
        logger.error("%s:%d: %s; %d bytes kept in %s", self.path, lineno, reason[:300], len(raw), kept)

    def _keep_aside(self, offset: int, raw: bytes) -> str | None:
        """Copy damaged bytes to ``live/damaged/`` (once per content), so nothing is lost to the next compaction."""
        import hashlib

        name = f"wal-{offset}-{hashlib.blake2b(raw, digest_size=6).hexdigest()}.bin"
        return damaged_copy(self.damaged_dir / name, raw, "log")

    def _last_seq(self) -> int:
        last = 0
        for entry, _ in self._scan():
            last = entry.seq
        return last

    def _last_seq_cached(self) -> int:
        # Re-reading the whole log on every append would be O(n^2); the cache is valid while the file
        # size is what we left it (a compaction by a build changes it).
        cached = self._seq_cache
        if cached and cached[1] == self.size():
            return cached[0]
        return self._last_seq()

    def size(self) -> int:
        """Bytes in the log now (0 when there is none): a cheap test for "someone appended"."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def entries(self, after: int = 0) -> list[Change]:
        if not self.path.parent.is_dir():
            return []  # no live change logged yet (or the index directory is gone)
        with self._locked():
            return [e for e, _ in self._scan(after) if e.seq > after and e.op != "mark"]

    def snapshot(self) -> tuple[list[Change], int]:
        """All pending changes and the last sequence number, read under one lock (what a build folds in)."""
        with self._locked():
            entries = [e for e, _ in self._scan()]
        last = entries[-1].seq if entries else 0
        return [e for e in entries if e.op != "mark"], last

    # -- writing -----------------------------------------------------------------------------------
    def append_upsert(
        self,
        article: Article,
        *,
        vector: np.ndarray | None = None,
        signature: np.ndarray | None = None,
        embedding: str | None = None,
    ) -> int:
        record: dict[str, Any] = {"op": "upsert", "id": article.id, "article": article.to_dict()}
        if vector is not None and signature is not None and embedding is not None:
            record.update(vector=_encode(vector, "<f4"), signature=_encode(signature, "<u4"), embedding=embedding)
        return self._append(record)

    def append_editorial(self, change: EditorialChange) -> int:
        return self._append({"op": "editorial", "id": change.key, "editorial": change.to_dict()})

    def append_delete(self, article_id: str) -> int:
        return self._append({"op": "delete", "id": article_id})

    def _append(self, record: dict[str, Any]) -> int:
        # Encoded before the lock: a record that cannot be written as UTF-8 fails here, having written nothing.
        body = json.dumps(record, ensure_ascii=False)
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError("article", "contains text that is not valid Unicode (a lone surrogate)") from None
        with self._locked():
            self._cut_torn_tail()
            seq = self._last_seq_cached() + 1
            line = (f'{{"seq": {seq}, "at": {time.time()!r}, ' + body[1:]).encode("utf-8") + b"\n"
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise _write_error(exc, self.path) from None
            try:
                start = os.fstat(fd).st_size
                try:
                    append_whole(fd, line, start, self.path)  # nothing of an unacknowledged entry stays
                except OSError as exc:
                    raise _write_error(exc, self.path) from None
            finally:
                os.close(fd)
            self._seq_cache = (seq, start + len(line))
            return seq

    def _cut_torn_tail(self) -> None:
        """Drop an unfinished last line (its writer died before fsync returned: never acknowledged), keeping its
        bytes aside. Caller holds the lock, so no live writer is mid-append."""
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
            torn = os.pread(fd, size - end, end)
            line = sum(os.pread(fd, 1 << 20, at).count(b"\n") for at in range(0, end, 1 << 20)) + 1
            self._record_damage(
                line, end, torn, f"unfinished last entry of {size - end} bytes cut off before an append"
            )
            os.ftruncate(fd, end)
            os.fsync(fd)
            self._seq_cache = None
        finally:
            os.close(fd)

    def compact(self, upto: int) -> int:
        """Drop entries a published build has folded in; returns how many remain. Kept entries are copied byte
        for byte (vectors included)."""
        with self._locked():
            scanned = list(self._scan())
            if not scanned:
                return 0
            keep = [(e, raw) for e, raw in scanned if e.seq > upto and e.op != "mark"]
            if not keep:
                # Sequence numbers must never restart: a service compares them with the manifest's wal_seq.
                mark = {"seq": max(upto, scanned[-1][0].seq), "at": time.time(), "op": "mark", "id": ""}
                keep = [(Change(mark["seq"], "mark", "", None, mark["at"]), json.dumps(mark).encode() + b"\n")]
            with atomic_writer(self.path) as fh:
                for _, raw in keep:
                    fh.write(raw)
            self._seq_cache = None
            return sum(1 for e, _ in keep if e.op != "mark")


def _write_error(exc: OSError, path: Path) -> LiveWriteError:
    return LiveWriteError.of(exc, path, "the change was not made")
