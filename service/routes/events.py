"""Events from readers' browsers: impressions and clicks of related boxes (``POST /v1/events``), public and rate
limited per client IP.

The widget sends them with ``navigator.sendBeacon``, whose body is ``text/plain`` unless given a Blob (a JSON
Blob makes a cross-origin beacon need a CORS preflight), so ``text/plain`` bodies holding JSON are accepted as
well as ``application/json``. The answer comes only after the batch is durable (fsynced): 200 means stored; any
error status means nothing of the batch was stored, so the client may fix it (422) or wait (429, 503, 507) and send
it again; events it resends that were stored are dropped as duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from recommender.events.log import EventLog
from recommender.events.schema import EventBatch, InvalidEventsError, Limits, parse_batch
from recommender.settings import Settings

from ..errors import ApiError
from ..http import json_response
from ..ratelimit import TokenBuckets
from ..schemas import error_responses

__all__ = ["EventCounters", "EventsAccepted", "router"]

router = APIRouter(tags=["events"])

#: Media types a batch may come as (``+json`` types too); anything else is a 415.
_ACCEPTED = ("application/json", "text/plain")


@dataclass
class EventCounters:
    """Refusals since start, for metrics (the log counts what it stored)."""

    invalid_batches: int = 0
    invalid_events: int = 0
    rate_limited_batches: int = 0


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events stored (durable when this answer is sent).")
    duplicates: int = Field(description="Events dropped as already stored (a resent batch).")


def _batch_schema() -> dict[str, Any]:
    """EventBatch's JSON Schema with the event inlined (OpenAPI components do not hold pydantic's ``$defs``)."""
    schema = EventBatch.model_json_schema()
    defs = schema.pop("$defs", {})
    schema["properties"]["events"]["items"] = defs["Event"]
    return schema


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/v1/events",
    response_model=EventsAccepted,
    summary="Impression and click events of related boxes (batch; JSON, also as text/plain from sendBeacon)",
    responses={
        **error_responses(413, 415, 422, 429, 503, 507),
    },
    description="A batch of events as JSON. `Content-Type: text/plain` with the same JSON document is accepted too "
    "(what `navigator.sendBeacon` sends without a CORS preflight). 200 means every event is stored (fsynced) or was "
    "already; any error means none of the batch was stored. Events are checked against the server's clock: at most "
    "RECOMMENDER_EVENTS_MAX_FUTURE_SECONDS ahead, at most RECOMMENDER_EVENTS_MAX_AGE_DAYS old.",
    # Only the JSON form is in the schema: a text/plain body is "any string" to a schema, which it is not.
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _batch_schema()}}}},
)
async def post_events(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    log: EventLog = request.app.state.events
    buckets: TokenBuckets = request.app.state.event_buckets
    counters: EventCounters = request.app.state.event_counters
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media not in _ACCEPTED and not media.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"body: expected Content-Type application/json or text/plain, got {content_type[:100]}",
            fields=["body"],
        )
    body = await request.body()
    error: InvalidEventsError | None = None
    try:
        events = parse_batch(body, Limits.from_settings(settings))
    except InvalidEventsError as exc:
        error, events = exc, []
    wait = buckets.take(_client(request), len(events) or 1)
    if wait > 0:
        counters.rate_limited_batches += 1
        retry = buckets.retry_after(wait)
        raise ApiError(
            429,
            "rate_limited",
            f"too many events from this client (at most {settings.events_rate:g} per second, bursts of "
            f"{settings.events_burst}); nothing was stored: send again in {retry} s",
            headers={"Retry-After": retry},
        )
    if error is not None:
        counters.invalid_batches += 1
        counters.invalid_events += max(1, error.total)
        field = "body" if error.field == "body" else f"body.{error.field}"
        raise ApiError(422, "invalid_request", str(error), fields=[field])
    appended = await to_thread.run_sync(log.append, events)
    return json_response(
        {"accepted": appended.accepted, "duplicates": appended.duplicates}, headers={"Cache-Control": "no-store"}
    )
