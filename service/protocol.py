"""The HTTP protocol uvicorn runs, with a deadline for reading a request's headers.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits for ever on a connection that opened
and sends its headers slowly, or never: 2,000 such "slowloris" connections were held open for 40 s by a probe of
this service. Each request here must deliver its complete headers within ``header_timeout`` seconds of the
connection opening (or of the previous response), else the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HeaderTimeoutProtocol", "header_timeout_protocol"]

logger = logging.getLogger(__name__)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            logger.debug("closing a connection that sent no complete headers in %.1fs", self.header_timeout)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this kept-alive connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class with ``seconds`` as its deadline (uvicorn takes a class, not an instance)."""
    attrs: dict[str, Any] = {"header_timeout": seconds}
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), attrs)
