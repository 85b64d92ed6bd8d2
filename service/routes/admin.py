"""Admin routes (bearer token): live writes of articles, durable before the answer, and reload."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from recommender.article import parse_article

from .. import convertors  # noqa: F401 - the id convertors, before the routes are declared
from ..deps import LiveDep, require_admin
from ..errors import ApiError
from ..http import json_response
from ..schemas import ARTICLE_ID_PATTERN, ArticleIn, ArticleWritten, ReloadResponse, error_responses
from .articles import ArticleId, article_record

__all__ = ["router"]

router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])

NewArticleId = Annotated[
    str,
    PathParam(
        max_length=256,
        pattern=ARTICLE_ID_PATTERN,
        description="Article id: at most 256 characters, no control characters or surrounding spaces; "
        "may contain slashes.",
    ),
]


def _check_path_encoding(request: Request) -> None:
    """Writes need the id exactly as sent: the server decodes bad UTF-8 in a percent-encoded path (``%FF``) to
    U+FFFD, which would store or delete a different id than the client named, so that is refused instead."""
    raw = request.scope.get("raw_path")
    if raw is None:
        return
    try:
        unquote_to_bytes(raw.decode("latin-1")).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(
            422,
            "invalid_request",
            "article_id: the percent-encoded bytes in the path are not valid UTF-8",
            fields=["path.article_id"],
        ) from None


@router.put(
    "/v1/articles/{article_id:article_id}",
    response_model=ArticleWritten,
    status_code=200,
    summary="Insert (201) or replace (200) one article; durable before the response",
    responses={
        201: {"model": ArticleWritten, "description": "Created"},
        **error_responses(401, 403, 413, 422, 503, 507),
    },
)
def put_article(article_id: NewArticleId, body: ArticleIn, live: LiveDep, request: Request) -> Response:
    _check_path_encoding(request)
    body_id = (body.model_extra or {}).get("id")
    if body_id is not None and body_id != article_id:
        raise ApiError(
            422,
            "invalid_request",
            f"id: {str(body_id)!r:.300} in the body differs from {article_id!r} in the path",
            fields=["body.id"],
        )
    article = parse_article(article_record(body, article_id))
    if article.id != article_id:
        raise ApiError(422, "invalid_request", "id: must not start or end with whitespace", fields=["path.article_id"])
    created = live.upsert(article)
    snap = live.snapshot
    payload = {"id": article.id, "created": created, "index_version": snap.version, "wal_seq": snap.seq}
    return json_response(payload, status=201 if created else 200)


@router.delete(
    "/v1/articles/{article_id:article_id}",
    status_code=204,
    summary="Delete one article; durable before the response",
    responses={204: {"description": "Deleted"}, **error_responses(401, 403, 404, 503, 507)},
)
def delete_article(article_id: ArticleId, live: LiveDep, request: Request) -> Response:
    _check_path_encoding(request)
    live.delete(article_id)
    return Response(status_code=204)


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    summary="Switch to the currently published index version",
    responses=error_responses(401, 403, 503),
)
def reload(live: LiveDep) -> Response:
    result = live.reload(force=live.load_error is not None)
    return json_response(
        {
            "version": result.version,
            "previous": result.previous,
            "changed": result.changed,
            "seconds": round(result.seconds, 3),
            "replayed": result.replayed,
        }
    )
