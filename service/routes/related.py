"""The related routes: by article id (the hot route every article view calls) and for a draft."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from recommender.article import parse_article
from recommender.errors import ArticleNotFoundError
from recommender.events.schema import check_visitor
from recommender.options import RelatedOptions
from recommender.serving import LiveIndex
from recommender.settings import Settings

from .. import convertors  # noqa: F401 - the id convertors, before the routes are declared
from ..deps import LiveDep, compute_limiter
from ..fastpath import RELATED_ROUTE, raw_related_key, split_visitor
from ..http import cache_headers, json_response, not_modified
from ..schemas import DRAFT_OPTIONS, DraftRelatedRequest, RelatedResponse, error_responses, query_parameters
from .articles import ArticleId, article_record

__all__ = ["router"]

router = APIRouter(tags=["related"])
_DRAFT_ID = "__draft__"


def query_options(request: Request) -> RelatedOptions:
    """The query string as :class:`RelatedOptions`; a bad value is a 422 naming ``query.<option>``."""
    params = {k: v for k, v in request.query_params.items() if k in RelatedOptions.model_fields}
    try:
        return RelatedOptions.from_text(params)
    except ValidationError as exc:
        errors = [{**err, "loc": ("query", *err["loc"])} for err in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def query_variant(request: Request, live: LiveIndex) -> tuple[bytes, str]:
    """The query string without ``visitor`` and the visitor's variant (none: the default variant); a bad visitor
    id is a 422 naming ``query.visitor``."""
    query, visitor = split_visitor(request.scope["query_string"])
    if visitor is not None:
        try:
            check_visitor(visitor)
        except ValueError as exc:
            error = {"type": "value_error", "loc": ("query", "visitor"), "msg": str(exc), "input": visitor[:200]}
            raise RequestValidationError([error]) from None
    return query, live.experiment.assign(visitor)


@router.get(
    RELATED_ROUTE,
    response_model=RelatedResponse,
    summary="Related articles for an indexed article",
    responses={304: {"description": "Not modified (If-None-Match matched the ETag)"}, **error_responses(404, 422, 503)},
    # The hot route: FastAPI's per-parameter dependency solving cost more than a cache hit itself (~110 us of
    # ~200 us), so the options are validated here in one pass of the model and documented from it.
    openapi_extra={"parameters": query_parameters()},
)
async def related(article_id: ArticleId, request: Request) -> Response:
    live: LiveIndex = request.app.state.live
    settings: Settings = request.app.state.settings
    options = query_options(request)
    query, variant = query_variant(request, live)
    etag = live.related_etag(article_id, options, variant)
    if not_modified(request, etag):
        # An unknown article has no representation, so no validator matches it (not even "*"): 404, never
        # 304. (The fast path never holds one: only answers for existing articles are cached.)
        snap = live.snapshot
        with snap.lock.read():
            known = article_id in snap.recommender
        if not known:
            raise ArticleNotFoundError(article_id)
        return Response(status_code=304, headers=cache_headers(settings, etag))
    result = live.peek_related(article_id, options, variant)
    if result is None:
        result = await to_thread.run_sync(live.related, article_id, options, variant, limiter=compute_limiter(request))
    response = json_response(result.payload, headers=cache_headers(settings, result.etag))
    # Exact bytes for the fast path (service/fastpath.py) to answer the next identical URL of the variant with.
    live.cache.put(raw_related_key(result.state, request.scope["path"], query, variant), (response.body, result.etag))
    return response


@router.get(
    "/v1/related",
    response_model=RelatedResponse,
    summary="Related articles for the article at a URL (the page's address, as a browser or a CMS knows it)",
    responses={304: {"description": "Not modified (If-None-Match matched the ETag)"}, **error_responses(404, 422, 503)},
    openapi_extra={
        "parameters": [
            {
                "name": "url",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 4096},
                "description": "The page's URL (canonical or not: tracking parameters, AMP variants, case, default "
                "ports, fragments and a trailing slash do not matter).",
            },
            *query_parameters(),
        ]
    },
)
async def related_by_url(request: Request) -> Response:
    url = request.query_params.get("url")
    if not url or len(url) > 4096:
        message = "url: required" if not url else "url: at most 4096 characters"
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "url"), "msg": message.split(": ", 1)[1]}]
        )
    live: LiveIndex = request.app.state.live
    article_id = live.resolve_url(url)
    return await related(article_id, request)


@router.post(
    "/v1/related",
    response_model=RelatedResponse,
    summary="Related articles for a draft or an article not yet indexed",
    responses=error_responses(413, 422, 503),
    openapi_extra={"parameters": query_parameters()},
)
async def related_to_draft(body: DraftRelatedRequest, live: LiveDep, request: Request) -> Response:  # type: ignore[valid-type]
    query = query_options(request)
    _, variant = query_variant(request, live)
    given: dict[str, Any] = {name: getattr(body, name) for name in DRAFT_OPTIONS if getattr(body, name) is not None}
    options = query.model_copy(update=given)  # both validated: the body's options win
    draft = parse_article(article_record(body, body.id or _DRAFT_ID, exclude={*DRAFT_OPTIONS, "id"}))
    # Through the same one-at-a-time limiter as related-by-id: many concurrent drafts queue instead of each
    # holding its own text, TF-IDF row and shingles in memory at once.
    payload = await to_thread.run_sync(live.related_to_draft, draft, options, variant, limiter=compute_limiter(request))
    return json_response(payload, headers={"Cache-Control": "no-store"})
