"""The live service's logic without HTTP: one :class:`LiveIndex` per process, composing the served version
(:mod:`.versions`), live writes (:mod:`.writes`) and the response cache (:mod:`.cache`), and answering reads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

from ..article import Article, format_datetime
from ..changelog import ChangeLog
from ..editorial import Editorial, EditorialChange
from ..embedding import Embedder
from ..events.variants import Experiment
from ..options import RelatedOptions
from ..settings import Settings
from .cache import RelatedResult, ResponseCache, etag
from .payloads import list_id, related_payload, summary_dict
from .snapshot import Snapshot
from .versions import ReloadResult, ServedVersion
from .writes import LiveWrites

__all__ = ["SERVICE_BATCH_SIZE", "LiveIndex"]

logger = logging.getLogger(__name__)

#: Embedding batch of the service (the build keeps ``batch_size``). Replaying 200 long live changes on one CPU
#: thread took the same ~10 s at any batch size (12.2 s at 64), but raised peak RSS by 563 MB at 64, 274 MB at 32,
#: 147 MB at 16, 75 MB at 8 and 46 MB at 4: the attention buffers grow with the batch, and a service replays its
#: log at every reload while it serves.
SERVICE_BATCH_SIZE = 4


class LiveIndex:
    """The served recommender behind an atomic reference, with reload, live changes, cache and readiness."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.cache = ResponseCache(settings.cache_size)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self.log = ChangeLog(settings.index_dir)
        self.versions = ServedVersion(
            settings, self.log, settings.ranking_config(), self.embedder, on_swap=self.cache.clear
        )
        self.writes = LiveWrites(self.versions, self.log, on_change=self.cache.clear)
        #: the A/B variants: which ranking configuration each visitor gets (one "control" when none are configured)
        self.experiment = Experiment.from_settings(settings)
        #: set once the first load has been tried (whatever its outcome)
        self.loaded = threading.Event()
        #: "not loaded", "loading", "ready" or "failed: <reason>" (drafts and live writes wait for the model)
        self.model_state = "ready" if embedder is not None else "not loaded"

    # -- model ---------------------------------------------------------------------------------
    def embedder(self) -> Embedder:
        """The process's model, loaded on first use and shared by every version."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    from ..model_cache import embedder_for

                    batch = min(self.settings.batch_size, SERVICE_BATCH_SIZE)
                    self.model_state = "loading"
                    self._embedder = embedder_for(self._embedding_settings(), batch_size=batch)
        return self._embedder

    def _embedding_settings(self) -> Settings:
        """With ``auto``, a live write or draft embeds with the backend the served version's vectors were made
        with, when this machine has it (vectors of different backends are not mixed in one index)."""
        if self.settings.embedding_backend != "auto" or self.versions.current is None:
            return self.settings
        recorded = (self.versions.current.recommender.manifest.extra.get("embedding") or {}).get("backend")
        from ..backends import unavailable

        if recorded and recorded != "auto" and unavailable(recorded) is None:
            return self.settings.overridden(embedding_backend=recorded)
        return self.settings

    # -- state (delegated) -------------------------------------------------------------------------
    @property
    def directory(self):  # noqa: ANN201 - index.IndexDirectory
        return self.versions.directory

    @property
    def snapshot(self) -> Snapshot:
        return self.versions.snapshot

    @property
    def current(self) -> Snapshot | None:
        return self.versions.current

    @property
    def ready(self) -> bool:
        return self.versions.current is not None

    @property
    def reason(self) -> str | None:
        return self.versions.reason

    @property
    def load_error(self) -> str | None:
        return self.versions.load_error

    @property
    def reloads(self) -> int:
        return self.versions.reloads

    def load(self) -> ReloadResult | None:
        try:
            return self.versions.load()
        finally:
            self.loaded.set()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Block until the first load has been tried (tests and scripts that need an answer, not a 503)."""
        return self.loaded.wait(timeout)

    def reload(self, *, force: bool = False) -> ReloadResult:
        return self.versions.reload(force=force)

    def maybe_reload(self) -> bool:
        """For the poller: load a newly published version, else apply log entries other processes wrote."""
        swapped = self.versions.poll()
        if swapped is None:
            self.writes.catch_up()
            return False
        return swapped

    def catch_up(self) -> int:
        return self.writes.catch_up()

    # -- live changes ------------------------------------------------------------------------------
    def upsert(self, article: Article) -> bool:
        return self.writes.upsert(article)

    def delete(self, article_id: str) -> bool:
        return self.writes.delete(article_id)

    def change_editorial(self, change: EditorialChange) -> Editorial:
        return self.writes.change_editorial(change)

    def editorial(self) -> Editorial:
        """The editorial state served now (the version's, with live changes)."""
        return self.snapshot.recommender.editorial

    def resolve_url(self, url: str) -> str:
        """The id of the article at ``url`` (raises ArticleNotFoundError naming the normalised URL)."""
        snap = self.snapshot
        with snap.lock.read():
            return snap.recommender.resolve_url(url)

    # -- reads -------------------------------------------------------------------------------------
    def _cached(
        self, snap: Snapshot, key: tuple[Hashable, ...], compute: Callable[[str], dict[str, Any]]
    ) -> RelatedResult:
        """The cached payload for ``key`` in the snapshot's current state, or ``compute(state)`` stored under it."""
        hit_key = (snap.state, *key)
        hit = self.cache.get(hit_key)
        if hit is not None:
            return RelatedResult(hit, etag(*hit_key), True, hit_key[0])
        with snap.lock.read():
            full_key = (snap.state, *key)  # a live change may have landed while we waited for the lock
            payload = compute(full_key[0])
        self.cache.put(full_key, payload)
        return RelatedResult(payload, etag(*full_key), False, full_key[0])

    # The cache key of a related list holds the variant, never the visitor: every visitor of a variant shares the
    # entry, the ETag and the request_id (which names the list served, see payloads.list_id).
    def related_etag(self, article_id: str, options: RelatedOptions, variant: str | None = None) -> str:
        """The ETag a related response would carry now, without computing it (for If-None-Match)."""
        variant_key = self.experiment.key(variant or self.experiment.default)
        return etag(self.snapshot.state, "related", article_id, options.key(), variant_key)

    def peek_related(
        self, article_id: str, options: RelatedOptions, variant: str | None = None
    ) -> RelatedResult | None:
        """The cached response, or None (not counted as a miss: :meth:`related` is expected to follow)."""
        snap = self.snapshot
        variant_key = self.experiment.key(variant or self.experiment.default)
        key = (snap.state, "related", article_id, options.key(), variant_key)
        hit = self.cache.get(key, count_miss=False)
        return RelatedResult(hit, etag(*key), True, key[0]) if hit is not None else None

    def _overrides(self, options: RelatedOptions, variant: str) -> dict[str, Any]:
        """The variant's ranking configuration, then the request's own options over it."""
        return {**self.experiment.overrides(variant), **options.overrides()}

    def related(self, article_id: str, options: RelatedOptions, variant: str | None = None) -> RelatedResult:
        """The related list of ``article_id`` as ranked for ``variant`` (default: the experiment's first)."""
        snap = self.snapshot
        variant = variant or self.experiment.default
        overrides = self._overrides(options, variant)
        key = ("related", article_id, options.key(), self.experiment.key(variant))

        def compute(state: str) -> dict[str, Any]:
            items = snap.recommender.related(article_id, options.k, filters=options.filters(), **overrides)
            return related_payload(article_id, snap.version, items, request_id=list_id(state, *key), variant=variant)

        return self._cached(snap, key, compute)

    def related_to_draft(self, draft: Article, options: RelatedOptions, variant: str | None = None) -> dict[str, Any]:
        """For an article not (yet) indexed: embeds it now, so it is not cached."""
        snap = self.snapshot
        variant = variant or self.experiment.default
        overrides = self._overrides(options, variant)
        self.embedder()  # load outside the read lock: a first load takes seconds
        with snap.lock.read():
            rec = snap.recommender
            items = rec.related_to_article(draft, options.k, filters=options.filters(), **overrides)
            state = snap.state
        shown = tuple(item.article.id for item in items)
        request_id = list_id(state, "draft", options.key(), self.experiment.key(variant), shown)
        return related_payload(None, snap.version, items, request_id=request_id, variant=variant)

    def article(self, article_id: str) -> tuple[Article, str]:
        """One article and its ETag."""
        snap = self.snapshot
        with snap.lock.read():
            article = snap.recommender.article(article_id)
        return article, etag(snap.state, "article", article_id)

    def search(self, query: str = "", *, section: str | None = None, limit: int = 20, offset: int = 0) -> RelatedResult:
        """Articles whose title (or id) contains every word of ``query``, newest first; for pickers and the demo."""
        snap = self.snapshot
        words = tuple(query.lower().split())
        section_key = section.lower() if section else None

        def compute(_state: str) -> dict[str, Any]:
            catalog = snap.recommender.catalog
            found = catalog.search(words, section_key)
            page = found[offset : offset + limit]
            items = [summary_dict(catalog.articles[p]) for p in page]
            return {"index_version": snap.version, "total": len(found), "items": items}

        return self._cached(snap, ("search", words, section_key, limit, offset), compute)

    def info(self) -> dict[str, Any]:
        """The status document (``GET /v1/index``)."""
        snap = self.versions.current
        out: dict[str, Any] = {
            "ready": snap is not None,
            "reason": self.reason,
            "published_version": self.directory.current(),
            "load_error": self.load_error,
            "version": None,
            "article_count": 0,
            "model": None,
            "built_at": None,
            "loaded_at": None,
            "pending_changes": 0,
            "wal_seq": None,
            "wal_errors": len(self.log.damage),
            "wal_damage": [d.to_dict() for d in self.log.damage[-10:]],
            "model_state": self.model_state,
            "last_load": None,
            "cache": {"size": len(self.cache), "hits": self.cache.hits, "misses": self.cache.misses},
        }
        if snap is not None:
            rec = snap.recommender
            out.update(
                version=snap.version,
                article_count=len(rec),
                model=rec.manifest.model,
                built_at=rec.manifest.created_at,
                loaded_at=format_datetime(datetime.fromtimestamp(snap.loaded_at, tz=UTC)),
                pending_changes=snap.pending,
                wal_seq=snap.seq,
            )
        last = self.versions.last_load
        if last is not None:
            out["last_load"] = {
                "version": last.version,
                "seconds": round(last.seconds, 3),
                "replayed": last.replayed,
                "embedded": last.embedded,
            }
        return out
