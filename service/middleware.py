"""ASGI middleware of the service that is not about one route: the request body limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response
from .routing import match_route

__all__ = ["BodyLimitMiddleware"]


class _BodyTooLarge(StarletteHTTPException):
    """An HTTPException so that FastAPI's body reading re-raises it instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: at once from Content-Length, else while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length > self.max_bytes:
                    match_route(scope)  # so that metrics label the rejection with the route it was sent to
                    await error_response(413, "body_too_large", f"request body larger than {self.max_bytes} bytes")(
                        scope, receive, send
                    )
                    return
                break
        received = 0
        limit = self.max_bytes

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


#: The page's policy: its own scripts and styles only, images from anywhere on http(s) (article images), requests
#: to this origin, never framed (clickjacking), no plugins, no <base> tricks.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options: nosniff`` on every response (a JSON answer is never run as a script); on the page
    and its assets also a Content-Security-Policy, a frame policy and a referrer policy."""

    def __init__(
        self, app: ASGIApp, page_prefixes: tuple[str, ...] = ("/static/", "/widget/", "/widget.js", "/widget.css")
    ) -> None:
        self.app = app
        self.page_prefixes = page_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = path == "/" or path.startswith(self.page_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff")]
                if page:
                    extra += [
                        (b"content-security-policy", PAGE_POLICY.encode()),
                        (b"x-frame-options", b"DENY"),
                        (b"referrer-policy", b"strict-origin-when-cross-origin"),
                    ]
                headers += [(name, value) for name, value in extra if name not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
