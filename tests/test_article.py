"""Article validation: every bad field gives a specific FieldError."""

from datetime import datetime, timezone

import pytest

from recommender import Article, FieldError, parse_article


def test_minimal_article_and_defaults():
    a = parse_article({"id": "a1", "title": "Hello"})
    assert a == Article(id="a1", title="Hello")
    assert a.tags == () and a.published_at is None


def test_full_article_round_trips_through_to_dict():
    record = {
        "id": "x/1",
        "title": "T",
        "body": "<p>One &amp; two</p>",
        "summary": "S",
        "url": "https://e.test/x",
        "published_at": "2026-08-01T10:00:00+02:00",
        "section": "World",
        "tags": ["a", "b"],
        "authors": ["Ann"],
        "language": "en",
        "story_id": "s1",
    }
    a = parse_article(record)
    assert a.body == "One & two"
    assert a.published_at == datetime(2026, 8, 1, 8, 0, tzinfo=timezone.utc)
    assert a.extra == {"story_id": "s1"}
    assert parse_article(a.to_dict()) == a


def test_naive_time_means_utc():
    a = parse_article({"id": "a", "title": "t", "published_at": "2026-08-01 10:00:00"})
    assert a.published_at == datetime(2026, 8, 1, 10, tzinfo=timezone.utc)


def test_numeric_id_becomes_string():
    assert parse_article({"id": 42, "title": "t"}).id == "42"


@pytest.mark.parametrize(
    "record, field, reason",
    [
        ({"title": "t"}, "id", "missing or empty"),
        ({"id": "  ", "title": "t"}, "id", "missing or empty"),
        ({"id": "a" * 257, "title": "t"}, "id", "longer than 256 characters (257)"),
        ({"id": ["a"], "title": "t"}, "id", "expected a string, got list"),
        ({"id": "a\nb", "title": "t"}, "id", "contains a control or bidirectional-override character (U+000A)"),
        ({"id": "a\x1b[31mred", "title": "t"}, "id", "contains a control or bidirectional-override character (U+001B)"),
        ({"id": "a\x85", "title": "t"}, "id", "contains a control or bidirectional-override character (U+0085)"),
        (
            {"id": "txt\u202egnp.exe", "title": "t"},
            "id",
            "contains a control or bidirectional-override character (U+202E)",
        ),
        ({"id": "a\u2066b", "title": "t"}, "id", "contains a control or bidirectional-override character (U+2066)"),
        (
            {"id": "a", "title": "t", "url": "javascript:alert(1)"},
            "url",
            "must be an absolute http or https URL, got 'javascript:alert(1)'",
        ),
        (
            {"id": "a", "title": "t", "url": "data:text/html,x"},
            "url",
            "must be an absolute http or https URL, got 'data:text/html,x'",
        ),
        (
            {"id": "a", "title": "t", "url": "/relative/path"},
            "url",
            "must be an absolute http or https URL, got '/relative/path'",
        ),
        ({"id": "a", "title": "t", "url": "https://"}, "url", "must be an absolute http or https URL, got 'https://'"),
        ({"id": "a", "title": "t", "tags": ["ok", "\udfff"]}, "tags", "contains a lone surrogate (not valid Unicode)"),
        ({"id": "a", "title": "t", "authors": ["\ud800x"]}, "authors", "contains a lone surrogate (not valid Unicode)"),
        (
            {"id": "a", "title": "t", "meta": {"deep": ["\udfff"]}},
            "meta.deep",
            "contains a lone surrogate (not valid Unicode)",
        ),
        ({"id": "a", "title": "t\udfff"}, "title", "contains a lone surrogate (not valid Unicode)"),
        ({"id": "a"}, "title", "missing or empty"),
        ({"id": "a", "title": ""}, "title", "missing or empty"),
        ({"id": "a", "title": 5}, "title", "expected a string, got int"),
        ({"id": "a", "title": "t", "body": {"x": 1}}, "body", "expected a string, got dict"),
        ({"id": "a", "title": "t", "published_at": "yesterday"}, "published_at", "not an ISO-8601 date: 'yesterday'"),
        ({"id": "a", "title": "t", "updated_at": 12}, "updated_at", "expected an ISO-8601 string, got int"),
        ({"id": "a", "title": "t", "tags": "x"}, None, None),
        ({"id": "a", "title": "t", "tags": [1]}, "tags", "expected a list of strings, found int"),
        ({"id": "a", "title": "t", "authors": 3}, "authors", "expected a list of strings, got int"),
    ],
)
def test_bad_fields(record, field, reason):
    if field is None:
        assert parse_article(record).tags == ("x",)
        return
    with pytest.raises(FieldError) as info:
        parse_article(record)
    assert (info.value.field, info.value.reason) == (field, reason)


def test_not_an_object():
    with pytest.raises(FieldError, match="record: expected a JSON object, got list"):
        parse_article([1, 2])


def test_content_hash_changes_with_text_only():
    a = parse_article({"id": "a", "title": "t", "body": "b", "section": "x"})
    b = parse_article({"id": "a", "title": "t", "body": "b", "section": "y"})
    c = parse_article({"id": "a", "title": "t", "body": "c"})
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_shown_text_fields_lose_their_markup():
    """Section, tags and authors are shown on pages as they are: markup in them is reduced to its text."""
    a = parse_article(
        {"id": "a", "title": "<b>Bold</b> move", "section": "<i>World</i>", "tags": ["<script>x()</script>", "<b>eu</b>"],
         "authors": ["<a href='javascript:x'>Ann</a>"], "url": "HTTPS://Example.test/a?b=1"}
    )  # fmt: skip
    assert (a.title, a.section, a.tags, a.authors) == ("Bold move", "World", ("eu",), ("Ann",))
    assert a.url == "HTTPS://Example.test/a?b=1"
