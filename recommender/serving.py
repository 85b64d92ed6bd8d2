"""The live service's logic without HTTP: the served index version, hot reload, durable live changes, a response cache.

One :class:`LiveIndex` per process. Reads take the current :class:`Snapshot` (an atomic attribute read) and work on
it to the end, so a reload that swaps in a new version never fails a request in flight. Live changes follow the
durability order validate -> write-ahead log + fsync -> apply in memory; their sequence numbers double as the
"live-change counter" in cache keys and ETags, so a restarted process that replayed the same log gives the same ETags.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from index import IndexDirectory, StoreError
from index.errors import NoVersionError

from .article import Article
from .embedding import Embedder
from .engine import Recommender
from .errors import ArticleNotFoundError, RecommenderError
from .changelog import ChangeLog
from .ranking import Filters
from .settings import Settings

__all__ = [
    "LiveIndex",
    "NotReadyError",
    "RelatedQuery",
    "RelatedResult",
    "ReloadFailedError",
    "ReloadResult",
    "ResponseCache",
    "Snapshot",
]

logger = logging.getLogger(__name__)

#: Embedding batch of the service (the build keeps ``batch_size``). Replaying 200 long live changes on one CPU
#: thread took the same ~10 s at any batch size (12.2 s at 64), but raised peak RSS by 563 MB at 64, 274 MB at 32,
#: 147 MB at 16, 75 MB at 8 and 46 MB at 4: the attention buffers grow with the batch, and a service replays its
#: log at every reload while it serves.
SERVICE_BATCH_SIZE = 4


class NotReadyError(RecommenderError):
    """No index version is loaded (nothing published yet, or the published one failed to load)."""

    code = "not_ready"


class ReloadFailedError(RecommenderError):
    """The published version could not be loaded; the previous one (if any) is still served."""

    code = "reload_failed"


# -- requests ---------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_utc(value: datetime | None) -> datetime | None:
    """Aware UTC; a naive time means UTC. A time with no UTC equivalent (year 1 at +18:00, year 9999 at
    -18:00) is clamped to the first or last representable instant: as a bound that is the same as no bound."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


def _names(values: Any) -> tuple[str, ...]:
    """Comma-separated string or list -> sorted unique non-empty names (sorted: the cache key is order-free)."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = values.split(",")
    return tuple(sorted({v.strip() for v in values if v and v.strip()}))


@dataclass(frozen=True)
class RelatedQuery:
    """The normalised options of one related request; equal queries share a cache entry and an ETag."""

    #: Longest ``language`` option: a BCP 47 tag ("en", "pt-BR", "zh-Hant-TW") fits in 35 characters.
    MAX_LANGUAGE_LENGTH: ClassVar[int] = 35

    k: int = 6
    sections: tuple[str, ...] = ()
    exclude_sections: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    freshness: float | None = None  # half-life in days -> RankingConfig.freshness_half_life_days
    diversity: float | None = None
    language: str | None = None  # lower-cased code -> Filters.language
    window: float | None = None  # days either side of the source's date -> RankingConfig.window_days

    @classmethod
    def build(
        cls,
        k: int = 6,
        *,
        section: Any = None,
        exclude_section: Any = None,
        tag: Any = None,
        exclude: Any = None,
        since: datetime | None = None,
        until: datetime | None = None,
        freshness: float | None = None,
        diversity: float | None = None,
        language: str | None = None,
        window: float | None = None,
    ) -> RelatedQuery:
        """From request-style options (comma-separated strings or lists). Raises ValueError naming the option."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
            raise ValueError("k: must be an integer from 1 to 50")
        if freshness is not None and not (math.isfinite(freshness) and freshness > 0):
            raise ValueError("freshness: must be a positive number of days")
        if diversity is not None and not (math.isfinite(diversity) and 0.0 <= diversity <= 1.0):
            raise ValueError("diversity: must be between 0 and 1")
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, (int, float)) or not math.isfinite(window) or window <= 0
        ):
            raise ValueError("window: must be a positive number of days")
        if language is not None:
            language = language.strip().lower() if isinstance(language, str) else ""
            if not 0 < len(language) <= cls.MAX_LANGUAGE_LENGTH:
                raise ValueError(
                    f"language: must be a language code of 1 to {cls.MAX_LANGUAGE_LENGTH} characters, e.g. en"
                )
        return cls(
            k=k,
            sections=_names(section),
            exclude_sections=_names(exclude_section),
            tags=_names(tag),
            exclude=_names(exclude),
            since=to_utc(since),
            until=to_utc(until),
            freshness=float(freshness) if freshness is not None else None,
            diversity=float(diversity) if diversity is not None else None,
            language=language,
            window=float(window) if window is not None else None,
        )

    def filters(self) -> Filters:
        return Filters(
            sections=self.sections,
            exclude_sections=self.exclude_sections,
            tags=self.tags,
            language=self.language,
            exclude_ids=frozenset(self.exclude),
            since=self.since,
            until=self.until,
        )

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.freshness is not None:
            out["freshness_half_life_days"] = self.freshness
        if self.diversity is not None:
            out["diversity"] = self.diversity
        if self.window is not None:
            out["window_days"] = self.window
        return out

    def key(self) -> tuple[Hashable, ...]:
        return (
            self.k,
            self.sections,
            self.exclude_sections,
            self.tags,
            self.exclude,
            _iso(self.since),
            _iso(self.until),
            self.freshness,
            self.diversity,
            self.language,
            self.window,
        )


# -- cache ------------------------------------------------------------------------------------
class ResponseCache:
    """A thread-safe LRU of JSON-ready payloads. Size 0 disables it (every lookup is a miss)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, *, count_miss: bool = True) -> Any | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += count_miss
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


# -- locking ----------------------------------------------------------------------------------
class _ReadWriteLock:
    """Many readers or one writer, writers first. The engine's catalog grows several arrays one after another
    on an upsert; a read between two of those steps would see them out of step, so reads and live changes to
    the same Recommender never overlap. Reload swaps need no lock: readers keep the object they started with."""

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


# -- state ------------------------------------------------------------------------------------
@dataclass
class Snapshot:
    """What one request works on: a loaded version plus the live changes applied to it so far."""

    recommender: Recommender
    version: str
    loaded_at: float
    #: last write-ahead-log sequence number applied (the build's own ``wal_seq`` when none since)
    seq: int
    #: live changes applied on top of the version (replayed at load or received since)
    pending: int = 0
    lock: _ReadWriteLock = field(default_factory=_ReadWriteLock)

    @property
    def state(self) -> str:
        """Identifies exactly what this snapshot serves: the version and the log position."""
        return f"{self.version}:{self.seq}"


@dataclass(frozen=True)
class RelatedResult:
    payload: dict[str, Any]
    etag: str
    cached: bool
    #: the snapshot state (version and log position) the payload was computed on
    state: str = ""


@dataclass(frozen=True)
class ReloadResult:
    version: str
    previous: str | None
    changed: bool
    seconds: float
    replayed: int = 0


def _etag(*parts: Any) -> str:
    digest = hashlib.blake2b(repr(parts).encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
    return f'"{digest}"'


class LiveIndex:
    """The served recommender behind an atomic reference, with reload, live changes, cache and readiness."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.directory = IndexDirectory(settings.index_dir)
        self.wal = ChangeLog(settings.index_dir)
        self.config = settings.ranking_config()
        self.cache = ResponseCache(settings.cache_size)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._reload_lock = threading.Lock()  # one load at a time
        self._write_lock = threading.Lock()  # live changes in log order; a reload's final catch-up and swap
        self._failed: tuple[str, str] | None = None  # (version, reason) of the last version that failed to load
        #: set while what CURRENT names cannot be read at all (index directory or version folder gone) although a
        #: version is served from memory; cleared when it is back
        self._missing: str | None = None
        self._reason: str | None = "not loaded yet"
        self._wal_size: int | None = None
        self.reloads = 0

    # -- model ---------------------------------------------------------------------------------
    def embedder(self) -> Embedder:
        """The one Embedder of this process, loaded on first use and shared by every version."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    s = self.settings
                    self._embedder = Embedder(
                        s.model,
                        backend=s.embedding_backend,
                        batch_size=min(s.batch_size, SERVICE_BATCH_SIZE),
                        max_seq_length=s.max_seq_length,
                    )
        return self._embedder

    # -- readiness -----------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise NotReadyError(f"no index loaded: {self._reason}")
        return snap

    @property
    def current(self) -> Snapshot | None:
        """The served snapshot, or None when not ready (never raises)."""
        return self._snapshot

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    @property
    def reason(self) -> str | None:
        """Why no index is served, or None when one is."""
        return None if self._snapshot is not None else self._reason

    @property
    def load_error(self) -> str | None:
        """Why the published version is not the one served (it failed to load, or the index directory or the
        version folder is gone while this process serves from memory), or None."""
        if self._missing is not None:
            return self._missing
        if self._failed is None:
            return None
        version, reason = self._failed
        return f"published version {version} failed to load: {reason}"

    # -- loading -------------------------------------------------------------------------------
    def load(self) -> ReloadResult | None:
        """Load the published version at startup; not being able to is a state (not ready), not an error."""
        try:
            return self.reload()
        except (NotReadyError, ReloadFailedError) as exc:
            logger.warning("%s", exc)
            return None

    def reload(self, *, force: bool = False) -> ReloadResult:
        """Switch to the published version: load it in full, replay the log past its ``wal_seq``, then swap.

        Requests in flight keep the old object. Without ``force`` a version already served, or one that
        already failed to load (versions are immutable), is not loaded again."""
        with self._reload_lock:
            started = time.perf_counter()
            old = self._snapshot
            name = self.directory.current()
            if name is None:
                if old is not None:
                    self._set_missing(self._nothing_published(old))
                    raise ReloadFailedError(self._nothing_published(old))
                self._reason = f"no index published in {self.directory.root}; run `recommender build` first"
                raise NotReadyError(self._reason)
            if old is not None and old.version == name and not force:
                return ReloadResult(name, name, False, 0.0)
            if not force and self._failed is not None and self._failed[0] == name:
                raise ReloadFailedError(self.load_error or name)
            try:
                rec = Recommender.open(
                    self.directory.root,
                    model=self.settings.model,
                    config=self.config,
                    embedder=self.embedder,
                    version=name,
                    mmap=self.settings.mmap,
                    verify_digests=self.settings.verify_digests,
                )
                entries = self.wal.entries(after=rec.wal_seq)
                rec.replay(entries, reuse=old.recommender if old is not None else None)
            except Exception as exc:  # whatever a bad version raises, it must not take the service down
                if isinstance(exc, NoVersionError) or not self._version_present(name):
                    # CURRENT names a folder not there (yet, or any more): a copy in progress or a directory being
                    # restored, worth retrying on the next poll rather than marking the version as broken.
                    if old is None:
                        self._reason = str(exc)
                    else:
                        self._set_missing(f"{exc}; still serving {old.version} from memory")
                    raise NotReadyError(str(exc)) from None
                if not isinstance(exc, (RecommenderError, StoreError, OSError, ValueError)):
                    logger.exception("unexpected error loading version %s", name)
                self._set_missing(None)  # the version is there but broken: the failure below says how
                self._failed = (name, _one_line(exc))
                if old is None:
                    self._reason = self.load_error
                logger.error(
                    "could not load version %s; %s", name, "still serving " + old.version if old else "not ready"
                )
                raise ReloadFailedError(self.load_error or str(exc)) from None
            seq = max([rec.wal_seq] + [e.seq for e in entries])
            pending = len(entries)
            with self._write_lock:
                # Changes acknowledged while we loaded went to the old object and the log: fold them in too.
                late = self.wal.entries(after=seq)
                if late:
                    rec.replay(late, reuse=old.recommender if old is not None else None)
                    seq = max(seq, late[-1].seq)
                    pending += len(late)
                self._snapshot = Snapshot(rec, name, time.time(), seq, pending)
                self._failed = None
                self._set_missing(None)
                self._reason = None
                self.cache.clear()
                self._wal_size = self._wal_file_size()
            self.reloads += 1
            seconds = time.perf_counter() - started
            logger.info(
                "serving version %s (%d articles, %d live changes replayed) after %.2fs",
                name,
                len(rec),
                pending,
                seconds,
            )
            return ReloadResult(name, old.version if old else None, True, seconds, pending)

    def _set_missing(self, message: str | None) -> None:
        if message != self._missing:
            if message is not None:
                logger.error("%s", message)
            elif self._missing is not None:
                logger.info("the published index is readable again")
        self._missing = message

    def _version_present(self, name: str) -> bool:
        try:
            return self.directory.version_path(name).is_dir()
        except NoVersionError:
            return False

    def _nothing_published(self, snap: Snapshot) -> str:
        root = self.directory.root
        what = "the index directory is missing" if not root.is_dir() else "its CURRENT pointer is missing"
        return f"nothing is published in {root} ({what}); still serving {snap.version} from memory"

    def maybe_reload(self) -> bool:
        """For the poller: load a newly published version, and apply log entries other processes wrote."""
        name = self.directory.current()
        snap = self._snapshot
        if snap is not None:
            # Report (and stop reporting) an index directory removed or restored under us. Reads go on from memory.
            if name is None:
                self._set_missing(self._nothing_published(snap))
                return False
            if name == snap.version:
                if not self._version_present(name):
                    self._set_missing(
                        f"published version {name} is missing from {self.directory.root}; still serving it from memory"
                    )
                    return False
                self._set_missing(None)
        if name is not None and (snap is None or name != snap.version):
            if self._failed is not None and self._failed[0] == name:
                self._set_missing(None)
                return False
            try:
                return self.reload().changed
            except (NotReadyError, ReloadFailedError) as exc:
                logger.warning("%s", exc)
                return False
        if name is None and snap is None:
            self._reason = f"no index published in {self.directory.root}; run `recommender build` first"
        if snap is not None:
            self.catch_up()
        return False

    def _wal_file_size(self) -> int:
        try:
            return self.wal.path.stat().st_size
        except FileNotFoundError:
            return 0

    def catch_up(self) -> int:
        """Apply log entries appended by another process (another worker) since we last looked."""
        if self._wal_file_size() == self._wal_size:
            return 0
        with self._write_lock:
            return self._catch_up_locked()

    def _catch_up_locked(self, before: int | None = None) -> int:
        """Replay entries newer than the served state (and older than ``before``); caller holds the write lock."""
        snap = self._snapshot
        if snap is None:
            return 0
        entries = [e for e in self.wal.entries(after=snap.seq) if before is None or e.seq < before]
        if entries:
            with snap.lock.write():
                snap.recommender.replay(entries)
                snap.seq = max(snap.seq, entries[-1].seq)
                snap.pending += len(entries)
            self.cache.clear()
        if before is None:
            self._wal_size = self._wal_file_size()
        return len(entries)

    def _apply(self, snap: Snapshot, seq: int, change: Callable[[Recommender], bool]) -> bool:
        if seq != snap.seq + 1:
            self._catch_up_locked(before=seq)  # another process logged changes between our catch-up and append
        with snap.lock.write():
            result = change(snap.recommender)
            snap.seq = seq
            snap.pending += 1
        self.cache.clear()
        self._wal_size = self._wal_file_size()
        return result

    # -- live changes --------------------------------------------------------------------------
    def upsert(self, article: Article) -> bool:
        """Insert or replace one (already validated) article; True when it is new. Logged and fsynced first."""
        with self._write_lock:
            snap = self.snapshot
            if self._wal_file_size() != self._wal_size:
                self._catch_up_locked()
            seq = self.wal.append_upsert(article)
            return self._apply(snap, seq, lambda rec: rec.upsert(article))

    def delete(self, article_id: str) -> bool:
        """Remove one article; an unknown id raises ArticleNotFoundError and writes nothing."""
        with self._write_lock:
            snap = self.snapshot
            if self._wal_file_size() != self._wal_size:
                self._catch_up_locked()
            if article_id not in snap.recommender:
                raise ArticleNotFoundError(article_id)
            seq = self.wal.append_delete(article_id)
            return self._apply(snap, seq, lambda rec: rec.delete(article_id))

    # -- reads ---------------------------------------------------------------------------------
    def etag(self, snap: Snapshot, *parts: Any) -> str:
        return _etag(snap.state, *parts)

    def _cached(
        self, snap: Snapshot, key: tuple[Hashable, ...], compute: Callable[[], dict[str, Any]]
    ) -> RelatedResult:
        hit_key = (snap.state, *key)
        hit = self.cache.get(hit_key)
        if hit is not None:
            return RelatedResult(hit, _etag(*hit_key), True, hit_key[0])
        with snap.lock.read():
            full_key = (snap.state, *key)  # a live change may have landed while we waited for the lock
            payload = compute()
        self.cache.put(full_key, payload)
        return RelatedResult(payload, _etag(*full_key), False, full_key[0])

    def related_etag(self, article_id: str, query: RelatedQuery) -> str:
        """The ETag a related response would carry now, without computing it (for If-None-Match)."""
        return _etag(self.snapshot.state, "related", article_id, query.key())

    def peek_related(self, article_id: str, query: RelatedQuery) -> RelatedResult | None:
        """The cached response, or None (not counted as a miss: :meth:`related` is expected to follow)."""
        snap = self.snapshot
        key = (snap.state, "related", article_id, query.key())
        hit = self.cache.get(key, count_miss=False)
        return RelatedResult(hit, _etag(*key), True, key[0]) if hit is not None else None

    def related(self, article_id: str, query: RelatedQuery) -> RelatedResult:
        snap = self.snapshot

        def compute() -> dict[str, Any]:
            items = snap.recommender.related(article_id, query.k, filters=query.filters(), **query.overrides())
            return {"article_id": article_id, "index_version": snap.version, "items": [r.to_dict() for r in items]}

        return self._cached(snap, ("related", article_id, query.key()), compute)

    def related_to_draft(self, draft: Article, query: RelatedQuery) -> dict[str, Any]:
        """For an article not (yet) indexed: embeds it now, so it is not cached."""
        snap = self.snapshot
        self.embedder()  # load outside the read lock: a first load takes seconds
        with snap.lock.read():
            items = snap.recommender.related_to_article(draft, query.k, filters=query.filters(), **query.overrides())
        return {"article_id": None, "index_version": snap.version, "items": [r.to_dict() for r in items]}

    def article(self, article_id: str) -> tuple[Article, str]:
        """One article and its ETag."""
        snap = self.snapshot
        with snap.lock.read():
            article = snap.recommender.article(article_id)
        return article, self.etag(snap, "article", article_id)

    def search(self, query: str = "", *, section: str | None = None, limit: int = 20, offset: int = 0) -> RelatedResult:
        """Articles whose title (or id) contains every word of ``query``, newest first; for pickers and the demo."""
        snap = self.snapshot
        words = tuple(query.lower().split())
        section_key = section.lower() if section else None

        def compute() -> dict[str, Any]:
            # Scans the title and section columns; only the page's articles are read in full.
            table = snap.recommender.catalog.articles
            alive = snap.recommender.catalog.alive
            n = len(alive)
            ids, titles, sections, published = table.ids, table.titles, table.columns.sections, table.columns.published
            found = []
            for pos in range(n):
                if not alive[pos] or (section_key and sections[pos] != section_key):
                    continue
                if words:
                    text = f"{titles[pos]} {ids[pos]}".lower()
                    if not all(w in text for w in words):
                        continue
                found.append(pos)
            found.sort(key=lambda p: (-(published[p] if published[p] == published[p] else -math.inf), ids[p]))
            page = found[offset : offset + limit]
            return {
                "index_version": snap.version,
                "total": len(found),
                "items": [summary_dict(table[p]) for p in page],
            }

        return self._cached(snap, ("search", words, section_key, limit, offset), compute)

    def info(self) -> dict[str, Any]:
        snap = self._snapshot
        published = self.directory.current()
        out: dict[str, Any] = {
            "ready": snap is not None,
            "reason": self.reason,
            "published_version": published,
            "load_error": self.load_error,
            "version": None,
            "article_count": 0,
            "model": None,
            "built_at": None,
            "loaded_at": None,
            "pending_changes": 0,
            "wal_seq": None,
            "cache": {"size": len(self.cache), "hits": self.cache.hits, "misses": self.cache.misses},
        }
        if snap is not None:
            rec = snap.recommender
            out.update(
                version=snap.version,
                article_count=len(rec),
                model=rec.manifest.model,
                built_at=rec.manifest.created_at,
                loaded_at=_iso(datetime.fromtimestamp(snap.loaded_at, tz=UTC)),
                pending_changes=snap.pending,
                wal_seq=snap.seq,
            )
        return out


def summary_dict(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "title": article.title,
        "summary": article.summary,
        "url": article.url,
        "published_at": _iso(article.published_at),
        "section": article.section,
    }


def article_dict(article: Article) -> dict[str, Any]:
    return {
        **summary_dict(article),
        "body": article.body,
        "tags": list(article.tags),
        "authors": list(article.authors),
        "language": article.language,
        "updated_at": _iso(article.updated_at),
    }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
