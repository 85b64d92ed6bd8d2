"""The event a reader's browser sends: one impression or click of one item of a related box, validated once here.

A batch is all or nothing: the first invalid event rejects it (:class:`InvalidEventsError`, naming
``events[i].field``), and nothing of it is stored, so a client can fix the batch and send it again. Times are
checked against the server's clock: at most ``max_future`` seconds ahead (clock skew), at most ``max_age`` old (a
beacon that waited in a closed tab for days describes a page the current lists no longer match).

The dedup key (:func:`event_key`) names an event independently of when or how often it was sent: a client's
``event_id`` when it sends one (with the visitor), else every field of the event. A retried beacon carries the
same fields, so it has the same key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ..article import ID_PATTERN, format_datetime
from ..errors import RecommenderError
from ..options import MAX_K
from .variants import VARIANT_PATTERN

__all__ = [
    "EVENT_FIELDS",
    "EVENT_TYPES",
    "TOKEN_PATTERN",
    "VISITOR_PATTERN",
    "Event",
    "EventBatch",
    "InvalidEventsError",
    "Limits",
    "check_visitor",
    "event_key",
    "parse_batch",
]

EVENT_TYPES = ("impression", "click")
#: Visitor ids: printable ASCII without spaces, 1 to 128 characters (a UUID, a cookie value, a hash).
VISITOR_PATTERN = r"^[!-~]{1,128}$"
#: request_id and event_id: what the service and the widget generate (hex digests, UUIDs).
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
#: Field order of every stored copy (log lines, Parquet columns), after ``type``.
EVENT_FIELDS = ("type", "source_id", "item_id", "position", "request_id", "variant", "visitor", "at", "event_id")


class InvalidEventsError(RecommenderError, ValueError):
    """A batch was refused: ``field`` is the first invalid one (``events[3].position``); nothing was stored."""

    code = "invalid_request"
    exit_code = 2

    def __init__(self, field: str, reason: str, *, invalid: int = 1, total: int = 0) -> None:
        self.field = field
        self.reason = reason
        self.invalid = invalid
        self.total = total
        tail = f" ({invalid} of {total} events invalid; nothing was stored)" if total > 1 else " (nothing was stored)"
        super().__init__(f"{field}: {reason}{tail}")


def _iso_text(value: Any) -> Any:
    # ISO-8601 text only: pydantic's lax mode would also read a number (or a string of digits) as a Unix time.
    # (A check of the shape, not a parse: this runs for every event ingested; pydantic's own parser follows.)
    if isinstance(value, datetime) or (isinstance(value, str) and len(value) >= 10 and value[4:5] == "-"):
        return value
    raise ValueError("expected an ISO-8601 date-time, e.g. 2026-08-01T12:00:00Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _to_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# A lone surrogate (JSON allows "\udfff") never gets through: the JSON parser refuses it in a body, and the
# pattern check refuses it in a string from Python, so every stored event can be written as UTF-8.
ArticleId = Annotated[str, Field(min_length=1, max_length=256, pattern=ID_PATTERN)]
Token = Annotated[str, Field(pattern=TOKEN_PATTERN)]


class Limits:
    """What a batch is checked against: the server's clock and the configured limits."""

    def __init__(
        self,
        *,
        max_events: int = 100,
        max_future: float = 300.0,
        max_age: float = 7 * 86400.0,
        now: float | None = None,
    ) -> None:
        self.max_events = max_events
        self.max_future = max_future
        self.max_age = max_age
        self.now = now

    @classmethod
    def from_settings(cls, settings: Any, now: float | None = None) -> Limits:
        return cls(
            max_events=settings.max_events_per_batch,
            max_future=settings.events_max_future_seconds,
            max_age=settings.events_max_age_days * 86400.0,
            now=now,
        )


class Event(BaseModel):
    """One impression (the item was shown at ``position``) or click of a related box."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["impression", "click"] = Field(description="impression (shown) or click.")
    source_id: ArticleId = Field(description="The article whose related box it was (article_id of the response).")
    item_id: ArticleId = Field(description="The related article shown or clicked.")
    # strict: a JSON integer, not "3", true or 3.0
    position: Annotated[int, Field(ge=1, le=MAX_K, strict=True)] = Field(
        description="1-based position of the item in the box."
    )
    request_id: Token = Field(description="request_id of the related response that showed the box.")
    variant: str = Field(pattern=VARIANT_PATTERN, description="variant of that response.")
    visitor: str = Field(pattern=VISITOR_PATTERN, description="Anonymous visitor id (the one sent as ?visitor=).")
    at: Annotated[datetime, BeforeValidator(_iso_text)] = Field(
        description="When it happened, ISO-8601 (a time without offset means UTC)."
    )
    event_id: Token | None = Field(None, description="Optional client id of the event; a resent event keeps it.")

    @field_validator("at")
    @classmethod
    def _recent(cls, value: datetime, info: ValidationInfo) -> datetime:
        """In UTC (a naive time means UTC), to the millisecond, and within the limits of the server's clock."""
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        limits = (info.context or {}).get("limits")
        if limits is not None:
            now = limits.now if limits.now is not None else datetime.now(UTC).timestamp()
            ahead = value.timestamp() - now
            if ahead > limits.max_future:
                raise ValueError(f"{ahead:.0f} s in the future (more than {limits.max_future:g} s ahead of the server)")
            if -ahead > limits.max_age:
                days = -ahead / 86400
                raise ValueError(f"{days:.1f} days old (events older than {limits.max_age / 86400:g} days are refused)")
        return _to_ms(value)

    def at_ms(self) -> int:
        return (self.at - _EPOCH) // _MS

    def record(self) -> dict[str, Any]:
        """The stored form: fields in :data:`EVENT_FIELDS` order, ``at`` as ISO-8601 UTC with milliseconds."""
        # Written out rather than model_dump(): this runs for every event ingested, and is 4 times faster.
        out = {
            "type": self.type,
            "source_id": self.source_id,
            "item_id": self.item_id,
            "position": self.position,
            "request_id": self.request_id,
            "variant": self.variant,
            "visitor": self.visitor,
            "at": format_datetime(self.at, timespec="milliseconds"),
        }
        if self.event_id is not None:
            out["event_id"] = self.event_id
        return out


class EventBatch(BaseModel):
    """Body of ``POST /v1/events``: ``{"events": [...]}``, at most ``RECOMMENDER_MAX_EVENTS_PER_BATCH`` events."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1)

    @field_validator("events", mode="before")
    @classmethod
    def _not_too_many(cls, value: Any, info: ValidationInfo) -> Any:
        limits = (info.context or {}).get("limits")
        if limits is not None and isinstance(value, list) and len(value) > limits.max_events:
            raise ValueError(f"at most {limits.max_events} events per batch, got {len(value)}")
        return value


def format_ms(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds and a ``Z``."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=ms % 1000 * 1000)
    return format_datetime(moment, timespec="milliseconds")  # type: ignore[return-value]


def check_visitor(value: str) -> str:
    """A visitor id as the related routes take it (``?visitor=``); ValueError naming the rule otherwise."""
    if not (1 <= len(value) <= 128 and value.isascii() and all("!" <= c <= "~" for c in value)):
        raise ValueError("must be 1 to 128 printable ASCII characters without spaces")
    return value


def event_key(
    type: str, source_id: str, item_id: str, position: int, request_id: str, variant: str, visitor: str, at_ms: int,
    event_id: str | None = None,
) -> int:  # fmt: skip
    """A signed 64-bit integer naming the event: (visitor, event_id) when the client sent an id, else all of its
    fields. 64 bits (a Parquet INT64 column every reader knows, 8 bytes per event; a 16-byte key made the Parquet
    files 5 times larger): two different events of one day collide with probability n^2 / 2^65, about 3e-6 for
    10 million events a day, and a collision would drop one of them as a duplicate."""
    if event_id is not None:
        text = f"id\x1f{visitor}\x1f{event_id}"
    else:
        text = f"{type}\x1f{source_id}\x1f{item_id}\x1f{position}\x1f{request_id}\x1f{variant}\x1f{visitor}\x1f{at_ms}"
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def key_of(event: Event) -> int:
    return event_key(
        event.type, event.source_id, event.item_id, event.position, event.request_id, event.variant, event.visitor,
        event.at_ms(), event.event_id,
    )  # fmt: skip


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def parse_batch(body: bytes | str | Mapping[str, Any], limits: Limits) -> list[Event]:
    """Validate a batch (JSON text or already-parsed data); :class:`InvalidEventsError` names the first bad field."""
    if limits.now is None:  # one clock reading per batch, not one per event
        limits = Limits(
            max_events=limits.max_events, max_future=limits.max_future, max_age=limits.max_age, now=time.time()
        )
    context = {"limits": limits}
    try:
        if isinstance(body, (bytes, str)):
            batch = EventBatch.model_validate_json(body, context=context)
        else:
            batch = EventBatch.model_validate(body, context=context)
    except ValidationError as exc:
        raise _invalid(exc, body) from None
    return batch.events


def _invalid(exc: ValidationError, body: Any) -> InvalidEventsError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind = first.get("type")
    if kind == "json_invalid":
        detail = str((first.get("ctx") or {}).get("error", "")).strip()
        return InvalidEventsError("body", f"not valid JSON ({detail})" if detail else "not valid JSON")
    if first.get("loc") == () and kind in ("model_type", "model_attributes_type", "dict_type"):
        return InvalidEventsError("body", 'expected a JSON object {"events": [...]}')
    bad = {
        err["loc"][1]
        for err in errors
        if len(err["loc"]) > 1 and err["loc"][0] == "events" and isinstance(err["loc"][1], int)
    }
    total = _count_events(body) if bad else 0  # a batch-level error (too many, not a list) is no event's fault
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return InvalidEventsError(_location(tuple(first.get("loc", ()))), message, invalid=max(1, len(bad)), total=total)


def _count_events(body: Any) -> int:
    try:
        data = orjson.loads(body) if isinstance(body, (bytes, str)) else body
    except orjson.JSONDecodeError:
        return 0
    events = data.get("events") if isinstance(data, dict) else None
    return len(events) if isinstance(events, list) else 0
