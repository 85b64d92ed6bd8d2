"""URLs in articles: only ``http``/``https`` links are accepted, stored or served.

A ``javascript:`` or ``data:`` URL in a related box runs code in the reader's page when clicked, so such a value is
a bad row at build time and a 422 on a live write, and one stored by an older release is never served.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import FieldError

__all__ = ["SAFE_SCHEMES", "check_http_url", "is_http_url", "served_url"]

SAFE_SCHEMES = ("http", "https")


def is_http_url(value: str) -> bool:
    """An absolute ``http``/``https`` URL with a host, and nothing a browser would read otherwise."""
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value) or value != value.strip():
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in SAFE_SCHEMES and bool(parts.netloc) and bool(parts.hostname)


def check_http_url(value: str | None, field: str) -> str | None:
    """``value`` if it is an acceptable link; raises :class:`FieldError` naming ``field`` otherwise."""
    if value is None:
        return None
    if not is_http_url(value):
        raise FieldError(field, f"must be an absolute http or https URL, got {value[:80]!r}")
    return value


def served_url(value: str | None) -> str | None:
    """What a response may carry for a stored URL: the URL if it is http(s), else nothing."""
    return value if value is not None and is_http_url(value) else None
