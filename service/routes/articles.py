"""Reading articles: the listing and title search (pickers, the demo page) and one article."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel

from recommender.options import to_utc
from recommender.serving import article_dict

from .. import convertors  # noqa: F401 - the id convertors, before the routes are declared
from ..deps import LiveDep, SettingsDep, compute_limiter
from ..http import cached_response
from ..schemas import ArticleDetail, ArticleList, error_responses

__all__ = ["ArticleId", "article_record", "router"]

router = APIRouter(tags=["articles"])

ArticleId = Annotated[
    str,
    PathParam(
        description="Article id; may contain slashes (percent-encode '?', '#' and '%'); cannot end in '/related'."
    ),
]


def article_record(
    body: BaseModel, article_id: str, exclude: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A validated request body as the raw record ``parse_article`` reads (dates as ISO-8601 strings)."""
    record = body.model_dump(exclude={*exclude, "published_at", "updated_at", "expires_at"})
    for name in ("published_at", "updated_at", "expires_at"):
        value = to_utc(getattr(body, name, None))
        if value is not None:
            record[name] = value.isoformat()
    record["id"] = article_id
    return record


@router.get(
    "/v1/articles",
    response_model=ArticleList,
    summary="List or search articles (title words), newest first",
    responses=error_responses(422, 503),
)
async def list_articles(
    request: Request,
    live: LiveDep,
    settings: SettingsDep,
    query: Annotated[str, Query(max_length=200, description="Words that must all appear in the title or id.")] = "",
    section: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    result = await to_thread.run_sync(
        lambda: live.search(query, section=section, limit=limit, offset=offset), limiter=compute_limiter(request)
    )
    return cached_response(request, settings, result.payload, result.etag)


@router.get(
    "/v1/articles/{article_id:article_id}",
    response_model=ArticleDetail,
    summary="One article (for the demo page and checks)",
    responses={304: {"description": "Not modified"}, **error_responses(404, 503)},
)
async def get_article(article_id: ArticleId, request: Request, live: LiveDep, settings: SettingsDep) -> Response:
    article, etag = live.article(article_id)
    return cached_response(request, settings, article_dict(article), etag)
