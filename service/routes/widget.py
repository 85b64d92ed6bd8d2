"""The drop-in widget: ``widget.js`` and ``widget.css`` at a stable address (short caching, so a fix reaches every
site within minutes) and at a versioned one (``/widget/<hash>/...``, cached for a year: a site that pins it never
sees a change it did not choose)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..http import etag_matches
from .ops import STATIC_DIR

__all__ = ["router", "widget_version"]

router = APIRouter(include_in_schema=False)
_TYPES = {"widget.js": "text/javascript; charset=utf-8", "widget.css": "text/css; charset=utf-8"}
_SHORT = "public, max-age=300"
_IMMUTABLE = "public, max-age=31536000, immutable"


@lru_cache(maxsize=1)
def _files() -> tuple[str, dict[str, bytes]]:
    files = {name: (STATIC_DIR / name).read_bytes() for name in _TYPES}
    digest = hashlib.blake2b(b"".join(files[name] for name in sorted(files)), digest_size=6).hexdigest()
    return digest, files


def widget_version() -> str:
    """The content hash in the versioned URLs (changes whenever either file does)."""
    return _files()[0]


def _serve(request: Request, name: str, cache: str) -> Response:
    version, files = _files()
    etag = f'"{version}"'
    headers = {"Cache-Control": cache, "ETag": etag, "Access-Control-Allow-Origin": "*"}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(files[name], media_type=_TYPES[name], headers=headers)


@router.get("/widget.js")
@router.get("/widget.css")
async def current(request: Request) -> Response:
    return _serve(request, Path(request.url.path).name, _SHORT)


@router.get("/widget/{version}/{name}")
async def pinned(version: str, name: str, request: Request) -> Response:
    if name not in _TYPES or version != widget_version():
        raise ApiError(
            404, "not_found", f"no widget file {name!r} of version {version[:20]!r}; current: {widget_version()}"
        )
    return _serve(request, name, _IMMUTABLE)
