"""The FastAPI app factory: settings in, app out; the lifespan loads the index and runs the version poller."""

from __future__ import annotations

import ctypes
import logging
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from recommender import __version__
from recommender.embedding import Embedder
from recommender.serving import LiveIndex
from recommender.settings import Settings

from .api import STATIC_DIR, router
from .errors import BodyLimitMiddleware, install_error_handlers
from .fastpath import RelatedFastPath
from .metrics import Metrics, MetricsMiddleware

__all__ = ["create_app", "run"]

logger = logging.getLogger(__name__)


class _Poller:
    """A daemon thread calling ``LiveIndex.maybe_reload`` every ``interval`` seconds (loads run off the event loop)."""

    def __init__(self, live: LiveIndex, interval: float) -> None:
        self.live = live
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last_trim = time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                reloaded = self.live.maybe_reload()
            except Exception:  # a poller that dies silently would freeze the served version forever
                logger.exception("index poll failed")
                reloaded = False
            if reloaded or time.monotonic() - last_trim >= _TRIM_EVERY:
                release_free_memory()
                last_trim = time.monotonic()


def _preload_model(index: LiveIndex) -> threading.Thread:
    """Load the model in a daemon thread, so that the first draft (POST /v1/related) or live write does not
    wait the ~9 s it takes; until it is loaded, such a request waits for it (never loads it twice)."""

    def load() -> None:
        started = time.perf_counter()
        try:
            embedder = index.embedder()
            embedder.encode(["warm-up"])  # the first call initialises the model's kernels
        except Exception as exc:  # noqa: BLE001 - a missing model is reported by the requests needing it (503)
            logger.warning("model not preloaded: %s", exc)
            return
        logger.info("model %s loaded in %.1fs", embedder.model_id, time.perf_counter() - started)

    thread = threading.Thread(target=load, name="model-preload", daemon=True)
    thread.start()
    return thread


#: Seconds between returns of freed heap memory to the OS (see :func:`release_free_memory`).
_TRIM_EVERY = 30.0
_libc: ctypes.CDLL | None | bool = None


def release_free_memory() -> None:
    """Give memory the allocator holds but no longer uses back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Embedding (live writes, drafts, the log replay at each reload) makes large short-lived allocations in many
    request threads; glibc keeps freed memory in per-thread arenas, so RSS climbed by ~300 MB over a 10-minute soak
    without anything being leaked (tests/chaos/soak.py). Trimming every 30 s takes a few milliseconds."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


def create_app(
    settings: Settings | None = None, *, embedder: Embedder | None = None, live: LiveIndex | None = None
) -> FastAPI:
    """Build the app. ``embedder`` shares an already loaded model (tests); ``live`` an already built LiveIndex."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        index = live or getattr(app.state, "live", None)
        preload = index is None and embedder is None
        if index is None:
            index = LiveIndex(settings, embedder=embedder)
        app.state.live = index
        metrics.live = index
        if not index.ready:
            index.load()  # not ready is a state the probes report, not a reason to refuse to start
        if preload:
            # After the index load (it is not slowed down) and without waiting (probes answer at once).
            _preload_model(index)
        poller = _Poller(index, settings.poll_interval) if settings.poll_interval > 0 else None
        if poller:
            poller.start()
        try:
            yield
        finally:
            if poller:
                poller.stop()

    app = FastAPI(
        title="Related articles",
        version=__version__,
        summary="Related-article recommendations for news sites (API v1).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
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
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen(host: str, port: int) -> list[socket.socket]:
    """Bind ``host:port`` like asyncio's ``create_server`` would (every address the host resolves to).

    Done before uvicorn starts, so that a port in use is one clear error, not a loaded index and a page of
    server logs. Raises OSError."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def run(settings: Settings | None = None, *, log_level: str = "info", access_log: bool = True) -> None:
    """Serve with uvicorn (one worker) on ``settings.host:settings.port``.

    When the address cannot be bound (port in use, no permission, unknown host) this prints one line,
    ``error: cannot listen on HOST:PORT: REASON``, and exits with status 2, before loading anything."""
    import uvicorn

    settings = settings or Settings()
    address = _address(settings.host, settings.port)
    try:
        sockets = _listen(settings.host, settings.port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"error: cannot listen on {address}: {reason[:1].lower()}{reason[1:]}", file=sys.stderr)
        raise SystemExit(2) from None
    address = _address(settings.host, sockets[0].getsockname()[1])  # the port chosen, for port 0
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_level=log_level, access_log=access_log
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # uvicorn says where it listens only when it binds itself
                logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s (Press CTRL+C to quit)", address)

    server = Server(config)
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:  # as uvicorn.run
        pass
    finally:
        for sock in sockets:
            sock.close()
    if not server.started:  # the application failed to start (uvicorn.run's status)
        raise SystemExit(3)
