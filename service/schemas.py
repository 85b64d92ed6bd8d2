"""Request and response models of API v1: the OpenAPI schema is generated from these, so they are the contract."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from recommender.serving import RelatedQuery

__all__ = [
    "ARTICLE_ID_PATTERN",
    "ArticleDetail",
    "ArticleIn",
    "ArticleList",
    "ArticleSummary",
    "ArticleWritten",
    "CacheInfo",
    "DraftRelatedRequest",
    "ErrorBody",
    "ErrorResponse",
    "Health",
    "IndexInfo",
    "IsoDatetime",
    "Readiness",
    "Reason",
    "RelatedItem",
    "RelatedParams",
    "RelatedResponse",
    "ReloadResponse",
]

_FINITE = {"allow_inf_nan": False}
#: What parse_article accepts as an id: no control characters, not blank, no surrounding whitespace.
ARTICLE_ID_PATTERN = r"^[^\x00-\x1f\s](?:[^\x00-\x1f]*[^\x00-\x1f\s])?$"
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _iso_only(value: Any) -> Any:
    # pydantic would read a number as a Unix timestamp; the contract says ISO-8601, so a number is an error
    # rather than a surprising date.
    if isinstance(value, (int, float)) or (
        isinstance(value, (str, bytes))
        and _NUMBER.fullmatch(value if isinstance(value, str) else value.decode("latin-1"))
    ):
        raise ValueError("expected an ISO-8601 date-time, e.g. 2026-08-01T12:00:00Z")
    return value


def _json_number(value: Any) -> Any:
    # JSON numbers only: pydantic's lax mode would also take "5" or true, which the schema calls invalid;
    # strict mode would refuse 5.0, which JSON Schema calls a valid integer.
    if isinstance(value, (bool, str, bytes)):
        raise ValueError("expected a JSON number")  # noqa: TRY004 - pydantic reports ValueError, not TypeError
    return value


#: A date-time given as an ISO-8601 string (a naive one means UTC).
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. article_not_found, invalid_request, not_ready.")
    message: str = Field(description="Human-readable explanation; names the offending field for 422.")
    fields: list[str] | None = Field(None, description="For 422: the invalid fields, e.g. query.k or body.title.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Reason(BaseModel):
    """Why an item is related; render each as a chip. Known types and their fields:
    ``shared_terms`` (terms), ``shared_tags`` (tags), ``same_section`` (section),
    ``similar_meaning`` (score), ``published_gap`` (days, negative = before the source)."""

    model_config = ConfigDict(extra="allow")

    type: str


class RelatedItem(BaseModel):
    id: str
    title: str
    url: str | None
    published_at: str | None = Field(description="ISO-8601, UTC.")
    section: str | None
    score: float
    reasons: list[Reason]


class RelatedResponse(BaseModel):
    article_id: str | None = Field(description="The source article; null for POST /v1/related.")
    index_version: str
    items: list[RelatedItem]


class _ArticleFields(BaseModel):
    # Unknown fields (story_id, ...) are accepted and kept, like in a CMS export.
    model_config = ConfigDict(extra="allow")

    title: str = Field(min_length=1, max_length=10_000, pattern=r"\S", description="Required, not blank.")
    body: str = Field("", max_length=500_000)
    summary: str = Field("", max_length=100_000)
    url: str | None = Field(None, max_length=10_000)
    published_at: IsoDatetime | None = None
    updated_at: IsoDatetime | None = None
    section: str | None = Field(None, max_length=1_000)
    tags: list[str] = Field(default_factory=list, max_length=1_000)
    authors: list[str] = Field(default_factory=list, max_length=1_000)
    language: str | None = Field(None, max_length=100)


class ArticleIn(_ArticleFields):
    """Body of PUT /v1/articles/{article_id}: the article as the CMS exports it. Unknown fields are kept.
    An ``id`` field may be included; when it is, it must equal the path's id (else 422)."""


class DraftRelatedRequest(_ArticleFields):
    """Body of POST /v1/related: an article-like object plus the options of the GET route.

    ``section`` and ``language`` here are the draft's own; to restrict results to sections or a language use
    the ``section`` and ``language`` query parameters. Options given in the body win over the same query
    parameters."""

    id: str | None = Field(
        None, max_length=256, pattern=ARTICLE_ID_PATTERN, description="Excluded from the results if it is indexed."
    )
    k: Annotated[int | None, BeforeValidator(_json_number)] = Field(
        None, ge=1, le=50, description="Number of related articles (default 6)."
    )
    exclude_section: str | list[str] | None = None
    tag: str | list[str] | None = None
    exclude: str | list[str] | None = Field(
        None, description="Article ids never to return (comma-separated or a list)."
    )
    since: IsoDatetime | None = None
    until: IsoDatetime | None = None
    freshness: Annotated[float | None, BeforeValidator(_json_number)] = Field(None, gt=0, le=36_500, **_FINITE)
    diversity: Annotated[float | None, BeforeValidator(_json_number)] = Field(None, ge=0, le=1, **_FINITE)
    window: Annotated[float | None, BeforeValidator(_json_number)] = Field(
        None,
        gt=0,
        le=36_500,
        **_FINITE,
        description="Only articles published within this many days of the draft's published_at (no window "
        "without one).",
    )


class RelatedParams(BaseModel):
    """The query options of the related routes, validated as one model (one pass, not one per parameter)."""

    model_config = ConfigDict(extra="ignore")

    k: int = Field(6, ge=1, le=50, description="How many related articles.")
    section: str | None = Field(None, max_length=2000, description="Only these sections (comma-separated).")
    exclude_section: str | None = Field(None, max_length=2000, description="Never these sections (comma-separated).")
    tag: str | None = Field(
        None, max_length=2000, description="Only articles with one of these tags (comma-separated)."
    )
    exclude: str | None = Field(None, max_length=20_000, description="Article ids never to return (comma-separated).")
    since: IsoDatetime | None = Field(None, description="Only articles published at or after (ISO-8601).")
    until: IsoDatetime | None = Field(None, description="Only articles published at or before (ISO-8601).")
    freshness: float | None = Field(
        None, gt=0, le=36_500, allow_inf_nan=False, description="Half-life in days of a recency decay."
    )
    diversity: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="0 = pure relevance, 1 = most varied."
    )
    language: str | None = Field(
        None,
        min_length=1,
        max_length=RelatedQuery.MAX_LANGUAGE_LENGTH,
        # Documented here, checked by RelatedQuery.build with a clearer message than a pattern mismatch.
        json_schema_extra={"pattern": r"\S"},
        description="Only articles in this language (code as stored in the articles, e.g. en; any case).",
    )
    window: float | None = Field(
        None,
        gt=0,
        le=36_500,
        allow_inf_nan=False,
        description="Only articles published within this many days of the source article (no window for an "
        "article without a date).",
    )


class ArticleSummary(BaseModel):
    id: str
    title: str
    summary: str
    url: str | None
    published_at: str | None
    section: str | None


class ArticleDetail(ArticleSummary):
    body: str
    tags: list[str]
    authors: list[str]
    language: str | None
    updated_at: str | None


class ArticleList(BaseModel):
    index_version: str
    total: int = Field(description="Matching articles in all pages.")
    items: list[ArticleSummary]


class ArticleWritten(BaseModel):
    id: str
    created: bool
    index_version: str
    wal_seq: int = Field(description="Write-ahead-log sequence number of this change (it is durable).")


class CacheInfo(BaseModel):
    size: int
    hits: int
    misses: int


class IndexInfo(BaseModel):
    ready: bool
    reason: str | None = Field(description="Why no index is served, when none is.")
    version: str | None
    published_version: str | None = Field(
        description="The version CURRENT names (can differ while loading or after a failed load)."
    )
    load_error: str | None
    article_count: int
    model: str | None
    built_at: str | None
    loaded_at: str | None
    pending_changes: int = Field(
        description="Live changes (PUT/DELETE) applied on top of the version, not yet built in."
    )
    wal_seq: int | None
    cache: CacheInfo


class ReloadResponse(BaseModel):
    version: str
    previous: str | None
    changed: bool
    seconds: float
    replayed: int


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    version: str = Field(description="The version served.")
    published_version: str | None = Field(
        None, description="The version CURRENT names; differs from version while a newer one cannot be served."
    )
    load_error: str | None = Field(
        None,
        description="Why the published version is not the one served: it failed to load (corrupted, truncated), "
        "or the index directory or version folder is gone and the served one answers from memory.",
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can return."""
    text = {
        401: "Missing bearer token",
        403: "Wrong token, or admin routes disabled",
        404: "Article not found",
        413: "Request body too large",
        422: "Invalid parameter or body",
        503: "No index loaded (not_ready), or a live change could not be written (write_failed)",
        507: "No space left for the write-ahead log (insufficient_storage); the change was not made",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "Error")} for s in statuses}
