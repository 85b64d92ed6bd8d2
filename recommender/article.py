"""The article: the one domain record everything else reads, validated once at the boundary."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from .errors import FieldError
from .markup import html_to_text
from .urls import check_http_url

__all__ = [
    "ID_PATTERN",
    "KNOWN_FIELDS",
    "MAX_ID_LENGTH",
    "Article",
    "check_id_characters",
    "format_datetime",
    "parse_article",
    "parse_datetime",
]

MAX_ID_LENGTH = 256
KNOWN_FIELDS = (
    "id",
    "title",
    "body",
    "summary",
    "url",
    "published_at",
    "updated_at",
    "section",
    "tags",
    "authors",
    "language",
    "canonical_url",
    "image_url",
    "image_alt",
    "expires_at",
)


@dataclass(frozen=True, slots=True)
class Article:
    """One news article. Unknown export fields (labels like ``story_id``) are kept in ``extra``."""

    id: str
    title: str
    body: str = ""
    summary: str = ""
    url: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    section: str | None = None
    tags: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    language: str | None = None
    #: the page's canonical address, when the CMS knows it: URL lookups use it before ``url``
    canonical_url: str | None = None
    image_url: str | None = None
    image_alt: str = ""
    #: after this time the article is no longer recommended (it can still be read and have related articles)
    expires_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :func:`parse_article` reads back to an equal article."""
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "summary": self.summary,
            "url": self.url,
            "published_at": format_datetime(self.published_at),
            "updated_at": format_datetime(self.updated_at),
            "section": self.section,
            "tags": list(self.tags),
            "authors": list(self.authors),
            "language": self.language,
        }
        # Written only when set, so exports and logs of articles without them stay as they were.
        if self.canonical_url:
            out["canonical_url"] = self.canonical_url
        if self.image_url:
            out["image_url"] = self.image_url
        if self.image_alt:
            out["image_alt"] = self.image_alt
        if self.expires_at:
            out["expires_at"] = format_datetime(self.expires_at)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def content_hash(self) -> str:
        """Hash of the fields that feed embedding and lexical models: the key for incremental reuse."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.title, self.summary, self.body):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x1f")
        return h.hexdigest()


def format_datetime(value: datetime | None, timespec: str = "auto") -> str | None:
    """ISO-8601 in UTC with a ``Z`` (how every date leaves the system); a naive time means UTC. ``timespec`` as
    :meth:`datetime.isoformat` (events: ``"milliseconds"``)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_datetime(value: Any, field_name: str) -> datetime | None:
    """ISO-8601 to an aware UTC datetime; a naive time means UTC (CMS exports often omit the zone)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise FieldError(field_name, f"not an ISO-8601 date: {value!r:.60}") from None
    else:
        raise FieldError(field_name, f"expected an ISO-8601 string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _text(record: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = record.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = ""
    if not isinstance(value, str):
        raise FieldError(name, f"expected a string, got {type(value).__name__}")
    if "\x00" in value:
        value = value.replace("\x00", "")
    if required and not value.strip():
        raise FieldError(name, "missing or empty")
    return value


def _optional_text(record: Mapping[str, Any], name: str) -> str | None:
    value = _text(record, name).strip()
    return value or None


def _string_list(record: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = record.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, str):
        # CSV exports flatten lists; accept "a, b" and "a|b".
        sep = "|" if "|" in value else ","
        return tuple(part.strip() for part in value.split(sep) if part.strip())
    if hasattr(value, "tolist"):  # numpy / arrow arrays from Parquet
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise FieldError(name, f"expected a list of strings, got {type(value).__name__}")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise FieldError(name, f"expected a list of strings, found {type(item).__name__}")
        if item.strip():
            out.append(item.strip())
    return tuple(out)


#: Characters an id may not hold: C0 and C1 controls and DEL (terminal escapes in CLI output and logs), and the
#: bidirectional overrides and isolates (text that displays differently from what it is).
_FORBIDDEN_ID = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Spaces an id may not start or end with (written out: Python's and JavaScript's ``\s`` differ).
ID_SPACES = " \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_ID_SPACE_CHARS = (
    " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff\t\n\r\x0b\x0c"
)
#: The id rule as one regular expression, the same in Python and in JSON Schema (ECMA 262): the API documents it.
ID_PATTERN = (
    "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069" + ID_SPACES.encode("unicode_escape").decode() + "]"
    "(?:[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*"
    "[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069" + ID_SPACES.encode("unicode_escape").decode() + "])?$"
)


def check_id_characters(article_id: str) -> None:
    """Raise FieldError("id", ...) for control characters or bidirectional overrides (see ``_FORBIDDEN_ID``)."""
    bad = _FORBIDDEN_ID.search(article_id)
    if bad:
        raise FieldError("id", f"contains a control or bidirectional-override character (U+{ord(bad.group()):04X})")


def _check_unicode(value: Any, field: str = "", depth: int = 0) -> None:
    """Every string of the record, nested metadata included, must be valid Unicode: a lone surrogate (JSON allows
    ``"\\udfff"``) cannot be written as UTF-8, so it is refused here, naming the field, not found by a write."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError(field or "record", "contains a lone surrogate (not valid Unicode)") from None
    elif isinstance(value, Mapping) and depth < 64:
        for key, item in value.items():
            name = f"{field}.{key}" if field else str(key)
            _check_unicode(key, name, depth + 1)
            _check_unicode(item, name, depth + 1)
    elif isinstance(value, (list, tuple)) and depth < 64:
        for item in value:
            _check_unicode(item, field, depth + 1)


def parse_article(record: Mapping[str, Any], *, clean_html: bool = True, title_from_body: bool = False) -> Article:
    """Validate one raw export record. Raises :class:`FieldError` naming the first bad field.

    ``title_from_body``: wire feeds and table-style items often carry their headline as the body's first
    line; with this set such a record gets that line as title (flagged ``title_derived`` in ``extra``)
    instead of being rejected. A record with neither title nor body is always rejected."""
    if not isinstance(record, Mapping):
        raise FieldError("record", f"expected a JSON object, got {type(record).__name__}")
    raw_id = record.get("id")
    if isinstance(raw_id, bool) or raw_id is None:
        raise FieldError("id", "missing or empty")
    if isinstance(raw_id, int):
        raw_id = str(raw_id)  # numeric CMS ids are common; they are still stable strings
    if not isinstance(raw_id, str):
        raise FieldError("id", f"expected a string, got {type(raw_id).__name__}")
    check_id_characters(raw_id)
    article_id = raw_id.strip(_ID_SPACE_CHARS)
    if not article_id:
        raise FieldError("id", "missing or empty")
    if len(article_id) > MAX_ID_LENGTH:
        raise FieldError("id", f"longer than {MAX_ID_LENGTH} characters ({len(article_id)})")
    _check_unicode(record)

    body = _text(record, "body")
    derived = False
    if title_from_body and not _text(record, "title").strip() and body.strip():
        title = body.strip().split("\n", 1)[0].strip()[:200]
        derived = True
    else:
        title = _text(record, "title", required=True).strip()
    summary = _text(record, "summary")
    section = _optional_text(record, "section")
    tags = _string_list(record, "tags")
    authors = _string_list(record, "authors")
    if clean_html:
        body = html_to_text(body)
        summary = html_to_text(summary)
        title = html_to_text(title) or title
        # Shown on pages as they are: markup in them is reduced to its text, like in titles.
        section = html_to_text(section) or None if section else None
        tags = tuple(t for t in (html_to_text(t) for t in tags) if t)
        authors = tuple(a for a in (html_to_text(a) for a in authors) if a)

    extra = {k: v for k, v in record.items() if k not in KNOWN_FIELDS}
    if derived:
        extra["title_derived"] = True
    return Article(
        id=article_id,
        title=title,
        body=body,
        summary=summary,
        url=check_http_url(_optional_text(record, "url"), "url"),
        published_at=parse_datetime(record.get("published_at"), "published_at"),
        updated_at=parse_datetime(record.get("updated_at"), "updated_at"),
        section=section,
        tags=tags,
        authors=authors,
        language=_optional_text(record, "language"),
        canonical_url=check_http_url(_optional_text(record, "canonical_url"), "canonical_url"),
        image_url=check_http_url(_optional_text(record, "image_url"), "image_url"),
        image_alt=(html_to_text(_text(record, "image_alt")) if clean_html else _text(record, "image_alt")).strip()[
            :500
        ],
        expires_at=parse_datetime(record.get("expires_at"), "expires_at"),
        extra=extra,
    )
