"""Messy CMS exports: huge fields, odd encodings, hostile ids and dates. Nothing crashes, nothing is lost
silently, nothing derived from an id touches the file system."""

import json
import os

import pytest

from recommender import load_articles, parse_article
from recommender.build import build_index
from recommender.engine import Recommender
from recommender.settings import Settings
from tests.support.paths import write_jsonl

HOSTILE_IDS = [
    "../../etc/passwd",
    "a/b/c",
    "..",
    ".",
    "with space",
    "100%25 done",
    "%2e%2e%2f",
    "emoji-🙂",
    "rtl-\u05e9\u05dc\u05d5\u05dd",
    "x" * 256,
]


def test_huge_fields_and_odd_text(tmp_path):
    records = [
        {"id": "big-body", "title": "Big", "body": "word " * 2_000_000},  # 10 MB body
        {"id": "big-title", "title": "T" * 1_000_000},
        {"id": "nul", "title": "Nul\x00byte", "body": "a\x00b"},
        {
            "id": "rtl",
            "title": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 🙂🔥",
            "body": "emoji 🙂 and \u202eRTL override",
        },
        {
            "id": "script",
            "title": "<script>alert(1)</script>Headline",
            "body": "<p>x</p><script>document.cookie</script><p>y</p>",
        },
        {"id": "nested", "title": "Nested", "meta": json.loads("[" * 50 + "]" * 50)},
        {"id": "old", "title": "Old", "published_at": "0001-01-01T00:00:00Z"},
        {"id": "future", "title": "Future", "published_at": "9999-12-31T23:59:59+14:00"},
        {"id": "tz", "title": "Odd zone", "published_at": "2026-08-01T10:00:00+05:45"},
    ]
    path = write_jsonl(tmp_path / "x.jsonl", records)
    result = load_articles([path])
    assert not result.rejects
    by_id = {a.id: a for a in result.articles}
    assert len(by_id["big-body"].body) > 9_000_000
    assert "\x00" not in by_id["nul"].title + by_id["nul"].body
    assert by_id["script"].title == "Headline" and "cookie" not in by_id["script"].body
    assert by_id["tz"].published_at.isoformat() == "2026-08-01T04:15:00+00:00"
    assert by_id["future"].published_at.year == 9999


def test_deeply_nested_json_line_is_a_reject(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a", "title": "ok"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    result = load_articles([path])
    assert [a.id for a in result.articles] == ["a"]
    assert [(r.line, r.field) for r in result.rejects] in ([(2, "json")], [(2, "record")])


def test_mixed_encodings_are_rejected_by_line(tmp_path):
    path = tmp_path / "x.jsonl"
    latin1 = '{"id": "l1", "title": "Caf\u00e9"}'.encode("latin-1")
    path.write_bytes(b'{"id": "u", "title": "Caf\xc3\xa9"}\n' + latin1 + b"\n")
    result = load_articles([path])
    assert [a.title for a in result.articles] == ["Caf\u00e9"]
    assert [str(r) for r in result.rejects] == [f"{path}:2: encoding: invalid UTF-8 at byte 26"]


def test_hostile_ids_stay_data(tmp_path, embedder):
    records = [
        {"id": i, "title": f"Story about the harbour strike number {n}", "body": "Dock workers walked out. " * 5}
        for n, i in enumerate(HOSTILE_IDS)
    ]
    export = write_jsonl(tmp_path / "x.jsonl", records)
    index_dir = tmp_path / "idx"
    before = set(os.listdir(tmp_path))
    report = build_index([export], Settings(index_dir=index_dir), embedder=embedder, progress=False)
    assert report.counts["articles"] == len(HOSTILE_IDS)
    assert set(os.listdir(tmp_path)) - before == {"idx"}  # nothing written outside the index directory
    version_files = set(os.listdir(index_dir / "versions" / report.version))
    assert not any(i in version_files for i in HOSTILE_IDS)
    rec = Recommender.open(index_dir)
    for article_id in HOSTILE_IDS:
        items = rec.related(article_id, 3)
        assert article_id not in [i.article.id for i in items]


@pytest.mark.parametrize("value", [12, 3.5, True, ["x"], {"a": 1}])
def test_numbers_where_strings_belong(value):
    from recommender import FieldError

    with pytest.raises(FieldError) as info:
        parse_article({"id": "a", "title": "t", "section": value})
    assert info.value.field == "section"
