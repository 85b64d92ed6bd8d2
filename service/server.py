"""Running the service: bind the address first (one clear error when it is taken), then uvicorn, one worker."""

from __future__ import annotations

import logging
import socket
import sys

from recommender.settings import Settings

from .app import create_app
from .protocol import header_timeout_protocol

__all__ = ["exit_now", "run"]


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


def _raise_file_limit() -> None:
    """Open connections are file descriptors: take the hard limit the system allows (often 1024 soft)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # not on this platform, or not allowed: keep what we have
        pass


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
    _raise_file_limit()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=access_log,
        # Limits chosen deliberately (README, Operations): see service/protocol.py and the slow-client test.
        http=header_timeout_protocol(settings.header_timeout),
        timeout_keep_alive=int(max(1, settings.keep_alive_timeout)),
        limit_concurrency=settings.max_connections,
        backlog=settings.backlog,
        timeout_graceful_shutdown=settings.shutdown_timeout,
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


def exit_now(code: int = 0) -> None:
    """End the process once the server has stopped. Every acknowledged write was fsynced when it was acknowledged,
    so nothing is left to save: skipping the interpreter's teardown of torch and the other native libraries (about
    a second) keeps a restart or a deploy from waiting on it."""
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
