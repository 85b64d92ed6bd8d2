"""Request and response models of API v1: the OpenAPI schema is generated from these, so they are the contract."""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from recommender.article import ID_PATTERN
from recommender.events.schema import VISITOR_PATTERN
from recommender.options import RelatedOptions, UtcDatetime

#: In a query string an empty visitor is allowed and means none.
VISITOR_QUERY_PATTERN = VISITOR_PATTERN.replace("{1,128}", "{0,128}")

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
    "Readiness",
    "Reason",
    "RelatedItem",
    "query_parameters",
    "RelatedResponse",
    "ReloadResponse",
]

#: What parse_article accepts as an id (no control or bidirectional-override characters, not blank, no surrounding
#: spaces), one pattern read the same way by Python and by JSON Schema clients.
ARTICLE_ID_PATTERN = ID_PATTERN
#: An absolute http(s) URL with a host (checked again, fully, by parse_article).
HTTP_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f-\x9f/?#@:\[\]]+(:[0-9]{1,5})?([/?#][^\s\x00-\x1f\x7f-\x9f]*)?$"
)


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. article_not_found, invalid_request, not_ready.")
    message: str = Field(description="Human-readable explanation; names the offending field for 422.")
    fields: list[str] | None = Field(None, description="For 422: the invalid fields, e.g. query.k or body.title.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Reason(BaseModel):
    """Why an item is related; render each as a chip. Known types and their fields:
    ``shared_terms`` (terms), ``shared_tags`` (tags), ``same_section`` (section),
    ``similar_meaning`` (score), ``published_gap`` (days, negative = before the source), ``pinned`` (an editor
    pinned it for this article)."""

    model_config = ConfigDict(extra="allow")

    type: str


class RelatedItem(BaseModel):
    id: str
    title: str
    url: str | None = Field(description="http(s) only; null when the article has none.")
    published_at: str | None = Field(description="ISO-8601, UTC.")
    section: str | None
    image_url: str | None = Field(None, description="http(s) only; null when the article has none.")
    image_alt: str | None = Field(None, description="The image's text alternative, when the CMS gave one.")
    score: float = Field(description="The ranking score (comparable within one box only).")
    relevance: float | None = Field(
        None, description="Calibrated probability that the item is related (comparable across boxes and corpora)."
    )
    fallback: bool = Field(False, description="A fill item shown because the box was short: title these apart.")
    reasons: list[Reason]


class RelatedResponse(BaseModel):
    article_id: str | None = Field(description="The source article; null for POST /v1/related.")
    index_version: str
    request_id: str = Field(
        description="Names the list served (index state, article, options, variant): the same for every view of "
        "the same list, so send it back with the impression and click events of this box (POST /v1/events)."
    )
    variant: str = Field(
        description="The A/B variant that ranked this list (from ?visitor=); send it back with events."
    )
    items: list[RelatedItem]
    below_floor: int = Field(0, description="Ranked items left out because their relevance was under the floor.")


class _ArticleFields(BaseModel):
    # Unknown fields (story_id, ...) are accepted and kept, like in a CMS export.
    model_config = ConfigDict(extra="allow")

    # NUL is dropped by parse_article: a title of only NULs and spaces is blank there, so the schema refuses it too
    # (schemathesis found "\u0000" accepted by the schema and rejected with 422).
    title: str = Field(min_length=1, max_length=10_000, pattern=r"[^\s\x00]", description="Required, not blank.")
    body: str = Field("", max_length=500_000)
    summary: str = Field("", max_length=100_000)
    url: str | None = Field(None, max_length=10_000, pattern=HTTP_URL_PATTERN, description="An absolute http(s) URL.")
    canonical_url: str | None = Field(
        None, max_length=10_000, pattern=HTTP_URL_PATTERN, description="The page's canonical URL (looked up first)."
    )
    image_url: str | None = Field(None, max_length=10_000, pattern=HTTP_URL_PATTERN, description="An http(s) image.")
    image_alt: str = Field("", max_length=500, description="The image's text alternative.")
    expires_at: UtcDatetime | None = Field(None, description="After this time the article is not recommended.")
    published_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    section: str | None = Field(None, max_length=1_000)
    tags: list[str] = Field(default_factory=list, max_length=1_000)
    authors: list[str] = Field(default_factory=list, max_length=1_000)
    language: str | None = Field(None, max_length=100)


class ArticleIn(_ArticleFields):
    """Body of PUT /v1/articles/{article_id}: the article as the CMS exports it. Unknown fields are kept.
    An ``id`` field may be included; when it is, it must equal the path's id (else 422)."""


#: Options a draft body may carry: all of RelatedOptions except ``section`` and ``language``, which in a draft
#: body are the draft's own fields (filter with the query parameters of the same names).
DRAFT_OPTIONS = tuple(name for name in RelatedOptions.model_fields if name not in ("section", "language"))


class _DraftFields(_ArticleFields):
    id: str | None = Field(
        None, max_length=256, pattern=ARTICLE_ID_PATTERN, description="Excluded from the results if it is indexed."
    )


def _optional(name: str) -> tuple[Any, Any]:
    """An option of RelatedOptions as an optional body field, with its type's own limits and validators."""
    field = RelatedOptions.model_fields[name]
    annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return Optional[annotation], Field(None, description=field.description)  # noqa: UP045


DraftRelatedRequest = create_model(
    "DraftRelatedRequest",
    __base__=_DraftFields,
    __doc__="""Body of POST /v1/related: an article-like object plus the options of the GET route.

    ``section`` and ``language`` here are the draft's own; to restrict results to sections or a language use
    the ``section`` and ``language`` query parameters. Options given in the body win over the same query
    parameters.""",
    **{name: _optional(name) for name in DRAFT_OPTIONS},
)


def query_parameters() -> list[dict[str, Any]]:
    """OpenAPI query parameters of the related routes, from :class:`RelatedOptions` (lists are comma-separated
    strings in a query)."""
    out = []
    for name, prop in RelatedOptions.model_json_schema()["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        if name in RelatedOptions.LIST_OPTIONS:
            prop = {"type": "string", "maxLength": 20_000, "title": prop.get("title", name)}
        out.append({"name": name, "in": "query", "required": False, "schema": prop, "description": description})
    out.append(
        {
            "name": "visitor",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "pattern": VISITOR_QUERY_PATTERN, "title": "Visitor"},
            "description": "Anonymous visitor id: picks the visitor's A/B variant (the same id always gets the same "
            "one); without it, the default variant. Not part of the cache key: visitors of a variant share answers.",
        }
    )
    return out


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
    wal_errors: int = Field(
        description="Change-log entries found unreadable or torn; their bytes are in live/damaged/."
    )
    wal_damage: list[dict[str, Any]] = Field(description="The last ten of them: line, offset, reason, kept_at.")
    model_state: str = Field(
        description="not loaded, loading, ready or failed: <reason>. Drafts and live writes wait for it."
    )
    last_load: dict[str, Any] | None = Field(
        None,
        description="The last load or reload: version, seconds, live changes replayed, and how many of them "
        "had to be embedded (the log keeps vectors, so normally 0).",
    )
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
    model_state: str = Field(
        "ready",
        description="not loaded, loading, ready or failed: <reason>. Related-by-id never needs the model; "
        "drafts (POST /v1/related) and live writes wait for it while it loads.",
    )
    wal_errors: int = Field(0, description="Change-log entries found unreadable or torn (see /v1/index).")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can return."""
    text = {
        401: "Missing bearer token",
        403: "Wrong token, or admin routes disabled",
        404: "Article not found",
        413: "Request body too large",
        415: "Unsupported Content-Type",
        422: "Invalid parameter or body",
        429: "Too many requests from this client (rate_limited); Retry-After gives the seconds to wait",
        503: "No index loaded (not_ready), or a live change could not be written (write_failed)",
        507: "No space left for the write-ahead log (insufficient_storage); the change was not made",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "Error")} for s in statuses}
