"""The JSON-ready documents a serving process answers with (and caches): the service and the CLI's ``--json``
print these same shapes."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from ..article import Article, format_datetime
from ..urls import served_url

if TYPE_CHECKING:
    from ..engine import Related

__all__ = ["article_dict", "list_id", "related_payload", "summary_dict"]


def list_id(state: str, *key: Hashable) -> str:
    """The ``request_id`` of a related response: it names the list served (served state, source, options, variant),
    not one view of it. A list is computed once and its bytes are cached and revalidated by ETag, so an id unique to
    each view could not be in them; events join to the exact list shown through it, and the visitor and the time
    tell one view from another. 24 hex digits, the same for the same list across processes and restarts."""
    return hashlib.blake2b(repr(("list", state, *key)).encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def related_payload(
    article_id: str | None,
    version: str,
    items: Sequence[Related],
    *,
    request_id: str | None = None,
    variant: str | None = None,
) -> dict[str, Any]:
    """A related response. ``request_id`` and ``variant`` are what events send back (null outside the service)."""
    return {
        "article_id": article_id,
        "index_version": version,
        "request_id": request_id,
        "variant": variant,
        "items": [r.to_dict() for r in items],
        # why the box is short: ranked items left out by the relevance floor
        "below_floor": int(getattr(items, "below_floor", 0)),
    }


def summary_dict(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "title": article.title,
        "summary": article.summary,
        "url": served_url(article.url),
        "published_at": format_datetime(article.published_at),
        "section": article.section,
    }


def article_dict(article: Article) -> dict[str, Any]:
    body = article.body
    if article.extra.get("title_derived") and body.lstrip().startswith(article.title):
        # The title was taken from the body's first line (a wire item without a headline): not shown twice.
        body = body.lstrip()[len(article.title) :].lstrip("\n")
    return {
        **summary_dict(article),
        "body": body,
        "tags": list(article.tags),
        "authors": list(article.authors),
        "language": article.language,
        "updated_at": format_datetime(article.updated_at),
    }
