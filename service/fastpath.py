"""A cache-hit fast path for the hot route: a repeated related request is answered before routing.

Every article view calls ``GET /v1/articles/{id}/related``; most are repeats of a popular article. Once the
route has answered a URL, its exact bytes and ETag are kept in the LiveIndex's response cache under
(state, decoded path, raw query string without ``visitor``, variant), where state is the served version and
write-ahead-log position: any upsert, delete or reload changes the state (and clears the cache), so an entry can
never outlive its data. The visitor only chooses the variant (:class:`recommender.events.variants.Experiment`), so
every visitor of a variant shares one entry; with the visitor in the key, each would get an entry of their own and
evict the popular articles' answers.
A hit skips FastAPI's routing and parameter validation, which cost more than the lookup itself; a miss goes
through the full route, which validates, computes and stores. Measured in benchmarks/perf/bench_service.py.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from recommender.events.schema import check_visitor
from recommender.serving import LiveIndex

from .http import etag_matches

__all__ = ["RELATED_ROUTE", "RelatedFastPath", "raw_related_key", "split_visitor"]

#: The route template, for metrics labels of requests answered here.
RELATED_ROUTE = "/v1/articles/{article_id:any_id}/related"
_ROUTE = SimpleNamespace(path=RELATED_ROUTE)
_PREFIX, _SUFFIX = "/v1/articles/", "/related"


def raw_related_key(state: str, path: str, query_string: bytes, variant: str) -> tuple[Any, ...]:
    """``query_string`` without its visitor parameter (:func:`split_visitor`)."""
    return ("raw-related", state, path, query_string, variant)


def split_visitor(query_string: bytes) -> tuple[bytes, str | None]:
    """The raw query string without its ``visitor`` parameters, and the visitor, read as Starlette reads query
    parameters (the last one given wins; ``+`` and ``%XX`` decoded as UTF-8). An empty visitor is no visitor."""
    if b"visitor" not in query_string:
        return query_string, None
    kept: list[bytes] = []
    visitor: str | None = None
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        if unquote_plus(name.decode("latin-1"), encoding="utf-8", errors="replace") == "visitor":
            visitor = unquote_plus(value.decode("latin-1"), encoding="utf-8", errors="replace")
        else:
            kept.append(part)
    return b"&".join(kept), visitor or None


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
        hit = None
        if snap is not None:
            query, visitor = split_visitor(scope["query_string"])
            try:
                variant = live.experiment.assign(check_visitor(visitor) if visitor is not None else None)
            except ValueError:  # the route answers the 422
                variant = None
            if variant is not None:
                hit = live.cache.get(raw_related_key(snap.state, path, query, variant), count_miss=False)
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
