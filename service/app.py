"""The FastAPI app factory: settings in, app out; the lifespan loads the index and runs the version poller."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from recommender import __version__
from recommender.embedding import Embedder
from recommender.events.compact import Compactor
from recommender.events.log import EventLog
from recommender.serving import LiveIndex
from recommender.settings import Settings

from .errors import install_error_handlers
from .fastpath import RelatedFastPath
from .memory import TRIM_EVERY, release_free_memory
from .metrics import Metrics, MetricsMiddleware
from .middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from .ratelimit import TokenBuckets
from .routes import router
from .routes.events import EventCounters
from .routes.ops import STATIC_DIR

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


class _Background:
    """One daemon thread for what a service does besides answering: load the index (the server accepts
    connections and answers ``/healthz`` meanwhile; ``/readyz`` says it is loading), load the model, then poll
    for new versions every ``interval`` seconds. Loads never run on the event loop."""

    def __init__(self, live: LiveIndex, interval: float, preload_model: bool) -> None:
        self.live = live
        self.interval = interval
        self.preload_model = preload_model
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-background", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # Not joined for long: a load or a model call in progress must not hold up shutdown (daemon thread).
        self._stop.set()
        self._thread.join(timeout=0.5)

    def _run(self) -> None:
        if not self.live.ready:
            self.live.load()  # not ready is a state the probes report, not a reason to stop
        if self.preload_model and not self._stop.is_set():
            # In a thread of its own: polling (new versions, other workers' writes) must not wait for the model.
            threading.Thread(target=_preload_model, args=(self.live,), name="model-preload", daemon=True).start()
        if self.interval <= 0:
            return
        last_trim = time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                reloaded = self.live.maybe_reload()
            except Exception:  # a poller that dies silently would freeze the served version forever
                logger.exception("index poll failed")
                reloaded = False
            if reloaded or time.monotonic() - last_trim >= TRIM_EVERY:
                release_free_memory()
                last_trim = time.monotonic()


def _preload_model(index: LiveIndex) -> None:
    """Load the model after the index, so that the first draft (POST /v1/related) or live write does not wait
    the seconds it takes; until it is loaded, such a request waits for it (never loads it twice)."""
    started = time.perf_counter()
    try:
        embedder = index.embedder()
        embedder.encode(["warm-up"])  # the first call initialises the model's kernels
    except Exception as exc:  # noqa: BLE001 - a missing model is reported by the requests needing it (503)
        index.model_state = f"failed: {exc}"
        logger.warning("model not preloaded: %s", exc)
        return
    index.model_state = "ready"
    logger.info("model %s loaded in %.1fs", embedder.model_id, time.perf_counter() - started)


def create_app(
    settings: Settings | None = None, *, embedder: Embedder | None = None, live: LiveIndex | None = None
) -> FastAPI:
    """Build the app. ``embedder`` shares an already loaded model (tests); ``live`` an already built LiveIndex."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        index = getattr(app.state, "live", None) or live
        preload = index is None and embedder is None
        if index is None:
            index = LiveIndex(settings, embedder=embedder)
        app.state.live = index
        metrics.live = index
        background = _Background(index, settings.poll_interval, preload_model=preload)
        app.state.background = background
        background.start()
        compactor = Compactor(settings.events_path(), settings.events_compact_interval, settings.events_compact_grace)
        app.state.compactor = compactor
        compactor.start()
        try:
            yield
        finally:
            background.stop()
            compactor.stop()
            app.state.events.close()

    app = FastAPI(
        title="Related articles",
        version=__version__,
        summary="Related-article recommendations for news sites (API v1).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    # Events (POST /v1/events): the log opens its segment at the first batch, so an app that never gets one writes
    # nothing.
    app.state.events = metrics.events = EventLog(settings.events_path(), dedup_keys=settings.events_dedup_keys)
    app.state.event_buckets = TokenBuckets(settings.events_rate, settings.events_burst)
    app.state.event_counters = metrics.event_counters = EventCounters()
    if live is not None:  # usable without the lifespan too (ASGI test clients that do not run it)
        app.state.live = live
        metrics.live = live
    install_error_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Outermost last: metrics see all, CORS wraps every answer (fast-path hits too), the body limit runs
    # before any route reads.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RelatedFastPath, live=lambda: getattr(app.state, "live", None), max_age=settings.cache_max_age)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
