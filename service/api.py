"""Routes of API v1, the probes, metrics and the demo page. Thin: validate, call the LiveIndex, serialize."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

import orjson
from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ValidationError
from starlette.convertors import PathConvertor, register_url_convertor

from recommender.article import parse_article
from recommender.errors import ArticleNotFoundError
from recommender.serving import LiveIndex, RelatedQuery, article_dict, to_utc
from recommender.settings import Settings

from .errors import ApiError, error_response
from .fastpath import RELATED_ROUTE, raw_related_key
from .schemas import (
    ARTICLE_ID_PATTERN,
    ArticleDetail,
    ArticleIn,
    ArticleList,
    ArticleWritten,
    DraftRelatedRequest,
    Health,
    IndexInfo,
    Readiness,
    RelatedParams,
    RelatedResponse,
    ReloadResponse,
    error_responses,
)

__all__ = ["STATIC_DIR", "router"]

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="RECOMMENDER_ADMIN_TOKEN")
_DRAFT_ID = "__draft__"


class _AnyIdConvertor(PathConvertor):
    """Like ``path`` (ids may contain slashes), and any character, newlines included: a strange id is then
    answered by the route (404/422 naming the id), never by "no route"."""

    regex = r"(?s:.*)"


class _ArticleIdConvertor(PathConvertor):
    """As above but never ending in ``/related``: such paths belong to the read-only related route alone,
    so PUT/DELETE there is a 405 rather than a write to an ambiguous id."""

    regex = r"(?s:(?!.*/related$).*)"


register_url_convertor("any_id", _AnyIdConvertor())
register_url_convertor("article_id", _ArticleIdConvertor())


# -- dependencies -------------------------------------------------------------------------------
async def get_live(request: Request) -> LiveIndex:
    return request.app.state.live


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def require_admin(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not expected:
        raise ApiError(403, "admin_disabled", "admin routes are disabled: set RECOMMENDER_ADMIN_TOKEN to enable them")
    if credentials is None:
        raise ApiError(
            401,
            "unauthorized",
            "admin route: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Bytes, not str: compare_digest rejects non-ASCII str, and a token sent by a client is arbitrary.
    if not hmac.compare_digest(credentials.credentials.encode("utf-8", "surrogatepass"), expected.encode("utf-8")):
        raise ApiError(403, "forbidden", "wrong admin token")


async def related_options(params: Annotated[RelatedParams, Query()]) -> RelatedQuery:
    return _params_query(params)


def _params_query(params: RelatedParams) -> RelatedQuery:
    return _query(params.k, **params.model_dump(exclude={"k"}))


def _query(k: int, *, from_body: frozenset[str] = frozenset(), **options: Any) -> RelatedQuery:
    """RelatedQuery.build, its ValueError as a 422 naming the option (``query.X``, or ``body.X`` for options
    in ``from_body``)."""
    try:
        return RelatedQuery.build(k, **options)
    except ValueError as exc:
        name = str(exc).split(":", 1)[0]
        field = f"{'body' if name in from_body else 'query'}.{name}"
        raise ApiError(422, "invalid_request", str(exc), fields=[field]) from None


LiveDep = Annotated[LiveIndex, Depends(get_live)]
QueryDep = Annotated[RelatedQuery, Depends(related_options)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ArticleId = Annotated[
    str,
    PathParam(
        description="Article id; may contain slashes (percent-encode '?', '#' and '%'); cannot end in '/related'."
    ),
]
NewArticleId = Annotated[
    str,
    PathParam(
        max_length=256,
        pattern=ARTICLE_ID_PATTERN,
        description="Article id: at most 256 characters, no control characters or surrounding spaces; "
        "may contain slashes.",
    ),
]


def _compute_limiter(request: Request) -> CapacityLimiter:
    """Ranking is CPU-bound Python and NumPy holding the GIL, so one thread per process computes misses and
    the rest queue; scale out with processes (workers with ``mmap``), not threads. On reuters21578 with 32
    connections: 288 req/s uncached with the default 40 threads, 395 with 2, 458 with 1; and cache hits,
    which never wait here, went from 8.5k to 12.3k req/s because they no longer fight misses for the GIL."""
    state = request.app.state
    limiter = getattr(state, "compute_limiter", None)
    if limiter is None:
        limiter = state.compute_limiter = CapacityLimiter(1)
    return limiter


# -- helpers ------------------------------------------------------------------------------------
def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _cache_headers(settings: Settings, etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": f"public, max-age={settings.cache_max_age}"}


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag in tags


def _cached_response(request: Request, settings: Settings, payload: Any, etag: str) -> Response:
    headers = _cache_headers(settings, etag)
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return _json(payload, headers=headers)


def _record(
    body: ArticleIn | DraftRelatedRequest, article_id: str, exclude: frozenset[str] = frozenset()
) -> dict[str, Any]:
    record = body.model_dump(exclude=set(exclude | {"published_at", "updated_at"}))
    for name in ("published_at", "updated_at"):
        value = to_utc(getattr(body, name))
        if value is not None:
            record[name] = value.isoformat()
    record["id"] = article_id
    return record


# -- reads ----------------------------------------------------------------------------------------
def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI query parameters from a model, as FastAPI would write them for declared parameters."""
    out = []
    for name, prop in model.model_json_schema()["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        out.append({"name": name, "in": "query", "required": False, "schema": prop, "description": description})
    return out


def _related_query(request: Request) -> RelatedQuery:
    try:
        params = RelatedParams.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = [{**err, "loc": ("query", *err["loc"])} for err in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    return _params_query(params)


@router.get(
    RELATED_ROUTE,
    response_model=RelatedResponse,
    tags=["related"],
    summary="Related articles for an indexed article",
    responses={304: {"description": "Not modified (If-None-Match matched the ETag)"}, **error_responses(404, 422, 503)},
    # The hot route: every article view calls it. FastAPI's per-parameter dependency solving cost more than a
    # cache hit itself (~110 us of ~200 us), so the options are validated here in one pass of the same model
    # and documented from it.
    openapi_extra={"parameters": _query_parameters(RelatedParams)},
)
async def related(article_id: ArticleId, request: Request) -> Response:
    live: LiveIndex = request.app.state.live
    settings: Settings = request.app.state.settings
    query = _related_query(request)
    etag = live.related_etag(article_id, query)
    if _not_modified(request, etag):
        # An unknown article has no representation, so no validator matches it (not even "*"): 404, never
        # 304. (The fast path never holds one: only answers for existing articles are cached.)
        snap = live.snapshot
        with snap.lock.read():
            known = article_id in snap.recommender
        if not known:
            raise ArticleNotFoundError(article_id)
        return Response(status_code=304, headers=_cache_headers(settings, etag))
    result = live.peek_related(article_id, query)
    if result is None:
        result = await to_thread.run_sync(live.related, article_id, query, limiter=_compute_limiter(request))
    response = _json(result.payload, headers=_cache_headers(settings, result.etag))
    # Exact bytes for the fast path (service/fastpath.py) to answer the next identical URL with.
    live.cache.put(
        raw_related_key(result.state, request.scope["path"], request.scope["query_string"]),
        (response.body, result.etag),
    )
    return response


@router.post(
    "/v1/related",
    response_model=RelatedResponse,
    tags=["related"],
    summary="Related articles for a draft or an article not yet indexed",
    responses=error_responses(413, 422, 503),
)
def related_to_draft(body: DraftRelatedRequest, live: LiveDep, query: QueryDep) -> Response:
    # Options the body may carry; ``section`` and ``language`` in the body describe the draft itself.
    body_options = ("exclude_section", "tag", "exclude", "since", "until", "freshness", "diversity", "window")
    options = {name: getattr(body, name) for name in body_options if getattr(body, name) is not None}
    base = {
        "section": ",".join(query.sections) or None,
        "exclude_section": list(query.exclude_sections),
        "tag": list(query.tags),
        "exclude": list(query.exclude),
        "since": query.since,
        "until": query.until,
        "freshness": query.freshness,
        "diversity": query.diversity,
        "language": query.language,
        "window": query.window,
    }
    merged = _query(
        body.k if body.k is not None else query.k,
        from_body=frozenset(options) | ({"k"} if body.k is not None else set()),
        **{**base, **options},
    )
    draft = parse_article(_record(body, body.id or _DRAFT_ID, exclude={"k", *body_options, "id"}))
    return _json(live.related_to_draft(draft, merged), headers={"Cache-Control": "no-store"})


@router.get(
    "/v1/articles",
    response_model=ArticleList,
    tags=["articles"],
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
        lambda: live.search(query, section=section, limit=limit, offset=offset), limiter=_compute_limiter(request)
    )
    return _cached_response(request, settings, result.payload, result.etag)


@router.get(
    "/v1/articles/{article_id:article_id}",
    response_model=ArticleDetail,
    tags=["articles"],
    summary="One article (for the demo page and checks)",
    responses={304: {"description": "Not modified"}, **error_responses(404, 503)},
)
async def get_article(article_id: ArticleId, request: Request, live: LiveDep, settings: SettingsDep) -> Response:
    article, etag = live.article(article_id)
    return _cached_response(request, settings, article_dict(article), etag)


@router.get("/v1/index", response_model=IndexInfo, tags=["index"], summary="The served index version")
async def index_info(live: LiveDep) -> Response:
    return _json(live.info(), headers={"Cache-Control": "no-store"})


# -- admin ----------------------------------------------------------------------------------------
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
    tags=["admin"],
    summary="Insert (201) or replace (200) one article; durable before the response",
    responses={
        201: {"model": ArticleWritten, "description": "Created"},
        **error_responses(401, 403, 413, 422, 503, 507),
    },
    dependencies=[Depends(require_admin)],
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
    article = parse_article(_record(body, article_id))
    if article.id != article_id:
        raise ApiError(422, "invalid_request", "id: must not start or end with whitespace", fields=["path.article_id"])
    created = live.upsert(article)
    snap = live.snapshot
    payload = {"id": article.id, "created": created, "index_version": snap.version, "wal_seq": snap.seq}
    return _json(payload, status=201 if created else 200)


@router.delete(
    "/v1/articles/{article_id:article_id}",
    status_code=204,
    tags=["admin"],
    summary="Delete one article; durable before the response",
    responses={204: {"description": "Deleted"}, **error_responses(401, 403, 404, 503, 507)},
    dependencies=[Depends(require_admin)],
)
def delete_article(article_id: ArticleId, live: LiveDep, request: Request) -> Response:
    _check_path_encoding(request)
    live.delete(article_id)
    return Response(status_code=204)


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    tags=["admin"],
    summary="Switch to the currently published index version",
    responses=error_responses(401, 403, 503),
    dependencies=[Depends(require_admin)],
)
def reload(live: LiveDep) -> Response:
    result = live.reload(force=live.load_error is not None)
    return _json(
        {
            "version": result.version,
            "previous": result.previous,
            "changed": result.changed,
            "seconds": round(result.seconds, 3),
            "replayed": result.replayed,
        }
    )


# -- probes, metrics, page ------------------------------------------------------------------------
@router.get("/healthz", response_model=Health, tags=["ops"], summary="200 while the process is up")
async def healthz() -> Response:
    return _json({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["ops"],
    summary="200 only when an index is loaded",
    responses=error_responses(503),
)
async def readyz(live: LiveDep) -> Response:
    snap = live.current
    if snap is None:
        return error_response(
            503, "not_ready", f"no index loaded: {live.reason}", headers={"Cache-Control": "no-store"}
        )
    # Still 200 when a newer version failed to load or the files are gone: this process answers correctly from
    # what it loaded, and taking it out of rotation would turn a bad build into an outage. load_error says why.
    return _json(
        {
            "status": "ready",
            "version": snap.version,
            "published_version": live.directory.current(),
            "load_error": live.load_error,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/metrics",
    tags=["ops"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
