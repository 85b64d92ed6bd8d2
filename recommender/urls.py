"""URLs in articles: only ``http``/``https`` links are accepted, stored or served.

A ``javascript:`` or ``data:`` URL in a related box runs code in the reader's page when clicked, so such a value is
a bad row at build time and a 422 on a live write, and one stored by an older release is never served.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .errors import FieldError

__all__ = [
    "DEFAULT_TRACKING_PARAMS",
    "SAFE_SCHEMES",
    "check_http_url",
    "is_http_url",
    "normalize_url",
    "served_url",
]

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


#: Query parameters that say where a reader came from, not which page this is (``*`` ends a prefix).
DEFAULT_TRACKING_PARAMS = (
    "utm_*", "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "igshid", "_ga", "_gl",
    "yclid", "ref_src", "cmpid", "ito",
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Query parameters that ask for the AMP rendering of the same page.
_AMP_PARAMS = {"amp": None, "outputtype": "amp", "output": "amp"}


def _tracking(name: str, patterns: Sequence[str]) -> bool:
    name = name.lower()
    return any(name.startswith(p[:-1].lower()) if p.endswith("*") else name == p.lower() for p in patterns)


def normalize_url(url: str, tracking_params: Sequence[str] = DEFAULT_TRACKING_PARAMS) -> str | None:
    """The key under which a page is looked up: the same page reached by different addresses gets one key.

    Scheme and host in lower case (a leading ``www.`` and ``amp.`` dropped), default ports dropped, the fragment
    dropped, tracking parameters dropped and the rest sorted, a trailing slash dropped, and AMP variants (a
    ``/amp`` path segment or suffix, ``.amp.html``, ``?amp=1``, ``?outputType=amp``) read as the page itself.
    ``http`` and ``https`` give the same key (sites move to https; readers keep old links). None for a value that
    is not an http(s) URL."""
    if not is_http_url(url):
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    for prefix in ("www.", "amp."):
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[-1].lower() == "amp":
        segments = segments[:-1]
    if segments and segments[0].lower() == "amp":
        segments = segments[1:]
    if segments and segments[-1].lower().endswith(".amp.html"):
        segments[-1] = segments[-1][: -len(".amp.html")] + ".html"
    elif segments and segments[-1].lower().endswith(".amp"):
        segments[-1] = segments[-1][: -len(".amp")]
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        lowered = name.lower()
        if _tracking(name, tracking_params):
            continue
        if lowered in _AMP_PARAMS and (_AMP_PARAMS[lowered] is None or value.lower() == _AMP_PARAMS[lowered]):
            continue
        query.append((name, value))
    # The same character written encoded or not ("%7E" / "~") is the same page.
    segments = [quote(unquote(s), safe="!$&'()*+,;=:@-._~") for s in segments]
    path = "/" + "/".join(segments)
    text = f"{netloc}{path if path != '/' else ''}"
    return text + ("?" + urlencode(sorted(query)) if query else "")
