"""Which version a process serves: loading it at start, hot reload when a new one is published, and why not.

:class:`ServedVersion` holds the served :class:`~.snapshot.Snapshot` behind an atomic reference. A reload loads
the new version in full beside the old one, replays the change log past the version's ``wal_seq``, then swaps the
reference; requests in flight finish on the object they started with. A version that fails to load is a state,
reported (``load_error``) while the previous one keeps serving, never a reason to stop serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from index import IndexDirectory, StoreError
from index.errors import NoVersionError

from ..changelog import ChangeLog
from ..embedding import Embedder
from ..errors import NotReadyError, RecommenderError, ReloadFailedError
from ..ranking import RankingConfig
from ..settings import Settings
from .snapshot import Snapshot

if TYPE_CHECKING:
    from ..engine import Recommender

__all__ = ["ReloadResult", "ServedVersion"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    version: str
    previous: str | None
    changed: bool
    seconds: float
    replayed: int = 0
    #: replayed upserts that had to be embedded (logged without a vector, or under another embedding)
    embedded: int = 0


class ServedVersion:
    """The served snapshot, the published version's state, and the lock that orders every change to the snapshot
    (live changes in log order, and a reload's final catch-up and swap)."""

    def __init__(
        self,
        settings: Settings,
        log: ChangeLog,
        config: RankingConfig,
        embedder: Callable[[], Embedder],
        on_swap: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.directory = IndexDirectory(settings.index_dir)
        self.log = log
        self.config = config
        self._embedder = embedder
        self._on_swap = on_swap
        self.order_lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._reload_lock = threading.Lock()  # one load at a time
        self._failed: tuple[str, str] | None = None  # (version, reason) of the last version that failed to load
        #: set while what CURRENT names cannot be read at all (index directory or version folder gone) although a
        #: version is served from memory; cleared when it is back
        self._missing: str | None = None
        self._reason: str | None = "loading the published version"
        self.reloads = 0
        self.last_load: ReloadResult | None = None

    # -- state -------------------------------------------------------------------------------------
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

    # -- loading -----------------------------------------------------------------------------------
    def load(self) -> ReloadResult | None:
        """Load the published version at startup; not being able to is a state (not ready), not an error."""
        try:
            return self.reload()
        except (NotReadyError, ReloadFailedError) as exc:
            logger.warning("%s", exc)
            return None

    def reload(self, *, force: bool = False) -> ReloadResult:
        """Switch to the published version: load it in full, replay the log past its ``wal_seq``, then swap.

        Without ``force`` a version already served, or one that already failed to load (versions are immutable),
        is not loaded again."""
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
            rec, entries = self._open(name, old)
            seq = max([rec.wal_seq] + [e.seq for e in entries])
            pending = len(entries)
            with self.order_lock:
                # Changes acknowledged while we loaded went to the old object and the log: fold them in too.
                late = self.log.entries(after=seq)
                if late:
                    rec.replay(late, reuse=old.recommender if old is not None else None)
                    seq = max(seq, late[-1].seq)
                    pending += len(late)
                self._snapshot = Snapshot(rec, name, time.time(), seq, pending)
                self._failed = None
                self._set_missing(None)
                self._reason = None
                self._on_swap()
            self.reloads += 1
            seconds = time.perf_counter() - started
            logger.info(
                "serving version %s (%d articles, %d live changes replayed) after %.2fs",
                name,
                len(rec),
                pending,
                seconds,
            )
            self.last_load = ReloadResult(
                name, old.version if old else None, True, seconds, pending, rec.replay_embedded
            )
            return self.last_load

    def _open(self, name: str, old: Snapshot | None) -> tuple[Recommender, list]:
        """Load version ``name`` and replay the log on it; any failure is recorded and raised as a reload error."""
        from ..engine import Recommender

        try:
            rec = Recommender.open(
                self.directory.root,
                model=self.settings.model,
                config=self.config,
                embedder=self._embedder,
                version=name,
                mmap=self.settings.mmap,
                verify_digests=self.settings.verify_digests,
                relevance=self.settings.relevance(),
            )
            entries = self.log.entries(after=rec.wal_seq)
            rec.replay(entries, reuse=old.recommender if old is not None else None)
            return rec, entries
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
            logger.error("could not load version %s; %s", name, "still serving " + old.version if old else "not ready")
            raise ReloadFailedError(self.load_error or str(exc)) from None

    def poll(self) -> bool | None:
        """For the poller: load a newly published version (True when one was swapped in); None when the served
        version is still the published one, so the caller may catch up on other processes' log writes."""
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
        return None if snap is not None else False

    # -- helpers -----------------------------------------------------------------------------------
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
