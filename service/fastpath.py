"""A cache-hit fast path for the hot route: a repeated related request is answered before routing.

Every article view calls ``GET /v1/articles/{id}/related``; most are repeats of a popular article. Once the
route has answered a URL, its exact bytes and ETag are kept in the LiveIndex's response cache under
(state, decoded path, raw query string), where state is the served version and write-ahead-log position: any
upsert, delete or reload changes the state (and clears the cache), so an entry can never outlive its data.
A hit skips FastAPI's routing and parameter validation, which cost more than the lookup itself; a miss goes
through the full route, which validates, computes and stores. Measured in benchmarks/perf/bench_service.py.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from recommender.serving import LiveIndex

from .http import etag_matches

__all__ = ["RELATED_ROUTE", "RelatedFastPath", "raw_related_key"]

#: The route template, for metrics labels of requests answered here.
RELATED_ROUTE = "/v1/articles/{article_id:any_id}/related"
_ROUTE = SimpleNamespace(path=RELATED_ROUTE)
_PREFIX, _SUFFIX = "/v1/articles/", "/related"


def raw_related_key(state: str, path: str, query_string: bytes) -> tuple[Any, ...]:
    return ("raw-related", state, path, query_string)


class RelatedFastPath:
    def __init__(self, app: ASGIApp, live: Callable[[], LiveIndex | None], max_age: int) -> None:
        self.app = app
        self.live = live
        self.cache_control = f"public, max-age={max_age}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not (path.startswith(_PREFIX) and path.endswith(_SUFFIX))
        ):
            await self.app(scope, receive, send)
            return
        live = self.live()
        snap = live.current if live is not None else None
        hit = (
            live.cache.get(raw_related_key(snap.state, path, scope["query_string"]), count_miss=False) if snap else None
        )
        if hit is None:
            await self.app(scope, receive, send)
            return
        body, etag = hit
        # A hit means the article exists in the served state (only found articles are cached, and any change
        # moves the state on), so "*" may match here; an unknown article always reaches the route's 404.
        scope["route"] = _ROUTE
        headers = [(b"etag", etag.encode()), (b"cache-control", self.cache_control)]
        inm = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if inm is not None and etag_matches(inm.decode("latin-1"), etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
