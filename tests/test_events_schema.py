"""Events as the API receives them: every validation rule with its exact message, batch rules, the dedup key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recommender.events.schema import InvalidEventsError, Limits, event_key, key_of, parse_batch

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
LIMITS = Limits(max_events=5, max_future=300, max_age=7 * 86400, now=NOW)


def _event(**changes) -> dict:
    event = {
        "type": "impression",
        "source_id": "demo-006",
        "item_id": "demo-003",
        "position": 1,
        "request_id": "b9bf95ab785298f424c5ecc0",
        "variant": "control",
        "visitor": "5b1f3c2e-8d7a-4e21",
        "at": "2026-11-30T11:59:00.123Z",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not _MISSING}


_MISSING = object()


def _error(body) -> InvalidEventsError:
    with pytest.raises(InvalidEventsError) as info:
        parse_batch(body if isinstance(body, (bytes, str)) else json.dumps(body), LIMITS)
    return info.value


def test_a_valid_batch_is_parsed_and_normalised() -> None:
    events = parse_batch(
        json.dumps({"events": [_event(), _event(type="click", at="2026-11-30T12:59:00.123456+01:00")]}), LIMITS
    )
    assert [e.type for e in events] == ["impression", "click"]
    assert events[0].record() == {**_event(), "at": "2026-11-30T11:59:00.123Z"}
    assert events[1].at == datetime(2026, 11, 30, 11, 59, 0, 123000, tzinfo=UTC)  # UTC, milliseconds
    naive = parse_batch({"events": [_event(at="2026-11-30T11:00:00")]}, LIMITS)[0]
    assert naive.record()["at"] == "2026-11-30T11:00:00.000Z"
    with_id = parse_batch({"events": [_event(event_id="e-1")]}, LIMITS)[0]
    assert with_id.record()["event_id"] == "e-1"


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"type": "view"}, "type", "Input should be 'impression' or 'click'"),
        ({"source_id": ""}, "source_id", "String should have at least 1 character"),
        ({"item_id": "x" * 257}, "item_id", "String should have at most 256 characters"),
        ({"item_id": "a\u202eb"}, "item_id", "String should match pattern"),
        ({"position": 0}, "position", "Input should be greater than or equal to 1"),
        ({"position": 51}, "position", "Input should be less than or equal to 50"),
        ({"position": "3"}, "position", "Input should be a valid integer"),
        ({"position": True}, "position", "Input should be a valid integer"),
        ({"position": 1.5}, "position", "Input should be a valid integer"),
        ({"position": 2.0}, "position", "Input should be a valid integer"),
        ({"request_id": "not a token"}, "request_id", "String should match pattern '^[A-Za-z0-9_-]{1,64}$'"),
        ({"variant": "-x"}, "variant", "String should match pattern"),
        ({"visitor": "has space"}, "visitor", "String should match pattern '^[!-~]{1,128}$'"),
        ({"visitor": "é"}, "visitor", "String should match pattern '^[!-~]{1,128}$'"),
        ({"visitor": "v" * 129}, "visitor", "String should match pattern '^[!-~]{1,128}$'"),
        ({"at": "2026-11-30T12:06:00Z"}, "at", "360 s in the future (more than 300 s ahead of the server)"),
        ({"at": "2026-11-20T12:00:00Z"}, "at", "10.0 days old (events older than 7 days are refused)"),
        ({"at": "yesterday"}, "at", "expected an ISO-8601 date-time, e.g. 2026-08-01T12:00:00Z"),
        ({"at": "2026-13-45T00:00:00Z"}, "at", "Input should be a valid datetime"),
        ({"at": "1796040000"}, "at", "expected an ISO-8601 date-time, e.g. 2026-08-01T12:00:00Z"),
        ({"at": 1796040000}, "at", "expected an ISO-8601 date-time, e.g. 2026-08-01T12:00:00Z"),
        ({"event_id": "a/b"}, "event_id", "String should match pattern"),
        ({"extra": 1}, "extra", "Extra inputs are not permitted"),
        ({"visitor": _MISSING}, "visitor", "Field required"),
    ],
)
def test_every_rule_names_the_event_and_field(change: dict, field: str, message: str) -> None:
    error = _error({"events": [_event(), _event(), _event(**change)]})
    assert error.field == f"events[2].{field}"
    assert str(error).startswith(f"events[2].{field}: {message}")
    assert str(error).endswith("(1 of 3 events invalid; nothing was stored)")


def test_the_first_bad_event_is_named_and_all_bad_ones_counted() -> None:
    error = _error({"events": [_event(), _event(position=0), _event(), _event(type="x"), _event()]})
    assert str(error) == (
        "events[1].position: Input should be greater than or equal to 1 (2 of 5 events invalid; nothing was stored)"
    )


@pytest.mark.parametrize(
    "body, field, message",
    [
        (b"{", "body", "body: not valid JSON (EOF while parsing an object at line 1 column 1) (nothing was stored)"),
        (b"[]", "body", 'body: expected a JSON object {"events": [...]} (nothing was stored)'),
        (b"{}", "events", "events: Field required (nothing was stored)"),
        (
            b'{"events": []}',
            "events",
            "events: List should have at least 1 item after validation, not 0 (nothing was stored)",
        ),
        (b'{"events": {}}', "events", "events: Input should be a valid array (nothing was stored)"),
        (b'{"events": [1]}', "events[0]", "events[0]: Input should be an object (nothing was stored)"),
        (
            b'{"events": [], "more": 1}',
            "events",
            "events: List should have at least 1 item after validation, not 0 (nothing was stored)",
        ),
        # JSON allows a lone surrogate escape; UTF-8 cannot hold it
        (
            b'{"events": [{"visitor": "\\udfff"}]}',
            "body",
            "body: not valid JSON (lone leading surrogate in hex escape at line 1 column 31) (nothing was stored)",
        ),
    ],
)
def test_batch_shape_errors(body: bytes, field: str, message: str) -> None:
    error = _error(body)
    assert (error.field, str(error)) == (field, message)


def test_a_batch_over_the_limit_is_refused_before_its_events_are_read() -> None:
    error = _error({"events": [{"anything": i} for i in range(6)]})
    assert str(error) == "events: at most 5 events per batch, got 6 (nothing was stored)"


def test_a_lone_surrogate_from_python_is_refused_naming_the_field() -> None:
    with pytest.raises(
        InvalidEventsError, match=r"^events\[0\]\.item_id: .*unable to parse raw data as a unicode string"
    ):
        parse_batch({"events": [_event(item_id="a\udfffb")]}, LIMITS)


def test_the_dedup_key_names_the_event_not_the_sending() -> None:
    first, again = (parse_batch({"events": [_event()]}, LIMITS)[0] for _ in range(2))
    assert key_of(first) == key_of(again)  # a resent beacon
    later = parse_batch({"events": [_event(at="2026-11-30T11:59:01.123Z")]}, LIMITS)[0]
    assert key_of(later) != key_of(first)  # the same item seen again a second later is a new impression
    click = parse_batch({"events": [_event(type="click")]}, LIMITS)[0]
    assert key_of(click) != key_of(first)
    # with a client event_id, only (visitor, event_id) count: a resend with a new timestamp is still the same event
    a = parse_batch({"events": [_event(event_id="e1")]}, LIMITS)[0]
    b = parse_batch({"events": [_event(event_id="e1", at="2026-11-30T11:59:30Z")]}, LIMITS)[0]
    assert key_of(a) == key_of(b) != key_of(first)
    assert -(2**63) <= key_of(a) < 2**63
    assert event_key("click", "s", "i", 1, "r", "v", "u", 0) == event_key("click", "s", "i", 1, "r", "v", "u", 0)
