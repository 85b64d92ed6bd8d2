"""Small HTTP pieces shared by the routes and the fast path: JSON responses, cache headers, conditional requests."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from recommender.settings import Settings

__all__ = ["cache_headers", "cached_response", "etag_matches", "json_response", "not_modified"]


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def etag_matches(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header value matches ``etag`` (``*``, a list, weak tags compared weakly)."""
    text = header.strip()
    return text == "*" or etag in {t.strip().removeprefix("W/") for t in text.split(",")}


def cache_headers(settings: Settings, etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": f"public, max-age={settings.cache_max_age}"}


def not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    return bool(header) and etag_matches(header, etag)


def cached_response(request: Request, settings: Settings, payload: Any, etag: str) -> Response:
    headers = cache_headers(settings, etag)
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return json_response(payload, headers=headers)
