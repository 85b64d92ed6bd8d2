"""The served article table: columns in memory, full articles read back from the version's file on demand."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from recommender.article import parse_article
from recommender.article_table import ArticleTable, read_article_hashes

RECORDS = [
    {"id": "a", "title": "Summit ends without a ceasefire", "body": "Leaders left Lisgard.", "section": "World",
     "published_at": "2026-08-03T07:40:00Z", "tags": ["Ceasefire", "summit"], "language": "en", "story_id": "s1"},
    {"id": "b/2", "title": "Court strikes down tariffs", "body": "Éditions, emoji 🚢 and RTL שלום.", "section": "business",
     "tags": [], "url": "https://example-news.test/b"},
    {"id": "c", "title": "Harbour strike ends", "summary": "A pay deal.", "published_at": "2026-08-05T10:00:00+02:00",
     "section": "world", "tags": ["ceasefire", "summit"]},
]  # fmt: skip


def _write(path: Path, records: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps({**r, "_hash": "h-" + r["id"]}, ensure_ascii=False) + "\n")
    return path


def test_articles_read_on_demand_equal_the_parsed_records(tmp_path: Path) -> None:
    table = ArticleTable.open(_write(tmp_path / "articles.jsonl", RECORDS))
    assert len(table) == 3 and table.ids == ["a", "b/2", "c"] and table.titles[1] == "Court strikes down tariffs"
    for pos, record in enumerate(RECORDS):
        assert table[pos] == parse_article(record, clean_html=False)
    assert [a.id for a in table] == ["a", "b/2", "c"] and table[-1].id == "c"
    with pytest.raises(IndexError):
        table[3]
    c = table.columns
    assert list(c.sections) == ["world", "business", "world"] and c.sections[0] is c.sections[2]  # interned
    assert c.tags[0] == frozenset({"ceasefire", "summit"}) and c.tags[0] is c.tags[2]  # one shared set
    assert c.published[2] == pytest.approx(parse_article(RECORDS[2]).published_at.timestamp())
    assert np.isnan(c.published[1]) and list(c.languages) == ["en", None, None]


def test_a_deleted_version_file_stays_readable_while_served(tmp_path: Path) -> None:
    path = _write(tmp_path / "articles.jsonl", RECORDS)
    table = ArticleTable.open(path)
    os.remove(path)  # gc or an operator removes the version under a running service
    assert table[1].body == RECORDS[1]["body"]


def test_appended_is_copy_on_write(tmp_path: Path) -> None:
    table = ArticleTable.open(_write(tmp_path / "articles.jsonl", RECORDS))
    live = parse_article({"id": "live-1", "title": "Talks to resume", "section": "World", "tags": ["summit"]})
    grown = table.appended(live)
    assert len(table) == 3 and len(grown) == 4 and grown.base_count == 3
    assert grown[3] is live and grown[0] == table[0]
    assert grown.columns.sections[3] == "world" and grown.columns.tags[3] == frozenset({"summit"})
    assert len(table.columns.sections) == 3  # what a reader holding the old table sees does not change


def test_empty_file_and_a_last_line_without_newline(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert len(ArticleTable.open(tmp_path / "empty.jsonl")) == 0
    path = tmp_path / "no-newline.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(RECORDS[2]), encoding="utf-8")
    table = ArticleTable.open(path)
    assert table.ids == ["a", "c"] and table[1].summary == "A pay deal."


def test_hashes_without_building_articles(tmp_path: Path) -> None:
    assert read_article_hashes(_write(tmp_path / "articles.jsonl", RECORDS)) == (
        ["a", "b/2", "c"],
        ["h-a", "h-b/2", "h-c"],
    )


def test_arrow_columns_give_the_same_table_as_parsing(tmp_path: Path) -> None:
    """A build writes the columns as Arrow beside the JSON lines; opening through them must give exactly the
    table that parsing every line gives (older versions without the file are still parsed)."""
    from recommender.article_table import write_article_table

    articles = [parse_article(r) for r in RECORDS]
    with open(tmp_path / "articles.jsonl", "wb") as fh, open(tmp_path / "articles.arrow", "wb") as columns:
        write_article_table(fh, columns, articles, ["h-a", "h-b", "h-c"])
    parsed = ArticleTable.open(tmp_path / "articles.jsonl")
    mapped = ArticleTable.open(tmp_path / "articles.jsonl", tmp_path / "articles.arrow")
    assert mapped.ids == parsed.ids and mapped.titles == parsed.titles
    assert list(mapped.columns.sections) == list(parsed.columns.sections)
    assert list(mapped.columns.languages) == list(parsed.columns.languages)
    assert mapped.columns.tags == parsed.columns.tags and mapped.columns.tags[0] is mapped.columns.tags[2]
    np.testing.assert_array_equal(mapped.columns.published, parsed.columns.published)
    assert [mapped[i] for i in range(3)] == [parsed[i] for i in range(3)] == articles
    assert read_article_hashes(tmp_path / "articles.jsonl")[1] == ["h-a", "h-b", "h-c"]
