"""The JSON-ready documents a serving process answers with (and caches): the service and the CLI's ``--json``
print these same shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..article import Article, format_datetime
from ..urls import served_url

if TYPE_CHECKING:
    from ..engine import Related

__all__ = ["article_dict", "related_payload", "summary_dict"]


def related_payload(article_id: str | None, version: str, items: Sequence[Related]) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "index_version": version,
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
