"""Loaders: formats, folders, rejects with file:line: field: reason, and file-level errors."""

import csv
import json

import pytest

from recommender import LoadError, RejectsExceededError, load_articles
from recommender.loading import check_rejects
from tests.support.paths import write_jsonl


def _ok(i):
    return {"id": f"a{i}", "title": f"Title {i}", "body": f"Body {i}"}


def test_jsonl_with_rejects(tmp_path):
    path = write_jsonl(
        tmp_path / "x.jsonl",
        [_ok(1), "{not json", {"id": "a3"}, "", _ok(4), {"id": "a5", "title": "t", "published_at": "soon"}],
    )
    result = load_articles([path])
    assert [a.id for a in result.articles] == ["a1", "a4"]
    assert result.rows == 5
    assert [str(r) for r in result.rejects] == [
        f"{path}:2: json: invalid JSON: Expecting property name enclosed in double quotes at column 2",
        f"{path}:3: title: missing or empty (article 'a3')",
        f"{path}:6: published_at: not an ISO-8601 date: 'soon' (article 'a5')",
    ]


def test_invalid_utf8_is_a_reject(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(json.dumps(_ok(1)).encode() + b"\n" + b'{"id": "b", "title": "\xff"}\n')
    result = load_articles([path])
    assert [str(r) for r in result.rejects] == [f"{path}:2: encoding: invalid UTF-8 at byte 22"]


def test_duplicate_ids_last_wins(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [_ok(1), {"id": "a1", "title": "newer"}, _ok(2)])
    result = load_articles([path])
    assert result.duplicates == 1
    assert [(a.id, a.title) for a in result.articles] == [("a2", "Title 2"), ("a1", "newer")] or [
        (a.id, a.title) for a in result.articles
    ] == [("a1", "newer"), ("a2", "Title 2")]
    assert {a.id: a.title for a in result.articles}["a1"] == "newer"


def test_csv_and_parquet_and_folder(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "export"
    folder.mkdir()
    with open(folder / "a.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "body", "tags", "published_at"])
        w.writerow(["c1", "CSV one", "body", "x|y", "2026-08-01"])
        w.writerow(["c2", "", "no title", "", ""])
    pq.write_table(pa.table({"id": ["p1"], "title": ["Parquet one"], "tags": [["t1", "t2"]]}), folder / "b.parquet")
    write_jsonl(folder / "c.jsonl", [_ok(9)])
    (folder / "notes.txt").write_text("ignored: not an export format")
    result = load_articles([folder])
    assert sorted(a.id for a in result.articles) == ["a9", "c1", "p1"]
    by_id = {a.id: a for a in result.articles}
    assert by_id["c1"].tags == ("x", "y")
    assert by_id["p1"].tags == ("t1", "t2")
    assert [str(r) for r in result.rejects] == [f"{folder / 'a.csv'}:3: title: missing or empty (article 'c2')"]


def test_html_is_reduced_to_text(tmp_path):
    path = write_jsonl(
        tmp_path / "x.jsonl", [{"id": "h", "title": "T", "body": "<p>A &amp; B</p><script>evil()</script><p>C</p>"}]
    )
    assert load_articles([path]).articles[0].body == "A & B\n\nC"


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: p / "missing.jsonl", "{p}/missing.jsonl: no such file or folder"),
        (
            lambda p: (p / "e.jsonl").write_text("") and p / "e.jsonl" or p / "e.jsonl",
            "{p}/e.jsonl: empty file (no articles)",
        ),
        (
            lambda p: (p / "blank.jsonl").write_text("\n\n") and p / "blank.jsonl",
            "{p}/blank.jsonl: empty file (no articles)",
        ),
        (
            lambda p: (p / "x.xml").write_text("<a/>") and p / "x.xml",
            "{p}/x.xml: unknown format '.xml'; expected one of .jsonl, .ndjson, .json, .csv, .parquet, .pq",
        ),
        (
            lambda p: (p / "sub").mkdir() or p / "sub",
            "{p}/sub: folder holds no .jsonl/.ndjson/.json/.csv/.parquet/.pq files",
        ),
        (lambda p: (p / "bad.parquet").write_text("nope") and p / "bad.parquet", None),
    ],
)
def test_file_level_errors(tmp_path, setup, message):
    path = setup(tmp_path)
    with pytest.raises(LoadError) as info:
        load_articles([path])
    if message:
        assert str(info.value) == message.format(p=tmp_path)
    else:
        assert str(info.value).startswith(f"{path}: not a readable Parquet file")


def test_no_paths():
    with pytest.raises(LoadError, match="no input files given"):
        load_articles([])


def test_reject_share_gate(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [_ok(i) for i in range(98)] + [{"id": "z"}, "[]"])
    result = load_articles([path])
    assert len(result.rejects) == 2
    check_rejects(result, 0.05, tmp_path / "r.jsonl")  # 2% <= 5%: passes
    with pytest.raises(RejectsExceededError) as info:
        check_rejects(result, 0.01, tmp_path / "r.jsonl")
    assert str(info.value) == (
        f"2 of 100 rows rejected (2.0% > 1.0% allowed): {path}:99: title: missing or empty (article 'z'); "
        f"{path}:100: record: expected a JSON object, got list; all rejects in {tmp_path / 'r.jsonl'}"
    )


def test_title_from_body_is_opt_in_and_counted(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"id": "w", "body": "FED WEEKLY REPORT\nTable follows"}, {"id": "e"}])
    strict = load_articles([path])
    assert [str(r) for r in strict.rejects] == [
        f"{path}:1: title: missing or empty (article 'w')",
        f"{path}:2: title: missing or empty (article 'e')",
    ]
    lenient = load_articles([path], title_from_body=True)
    assert [(a.id, a.title, a.extra) for a in lenient.articles] == [("w", "FED WEEKLY REPORT", {"title_derived": True})]
    assert lenient.derived_titles == 1
    assert [str(r) for r in lenient.rejects] == [f"{path}:2: title: missing or empty (article 'e')"]


def deny_reading(monkeypatch, denied):
    """Make ``open`` in the loader refuse ``denied`` like an unreadable file does. Tests run as root here, and
    root reads a chmod 000 file anyway, so the refusal is injected at the one call the loader makes."""
    import builtins

    from recommender import loading

    def guarded_open(file, *args, **kwargs):
        if str(file) == str(denied):
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(loading, "open", guarded_open, raising=False)


@pytest.mark.parametrize("name, row", [("x.jsonl", json.dumps(_ok(1))), ("x.csv", "id,title,body\na1,Title 1,Body 1")])
def test_unreadable_file_is_a_load_error(tmp_path, monkeypatch, name, row):
    path = tmp_path / name
    path.write_text(row + "\n")
    readable = write_jsonl(tmp_path / "other.jsonl", [_ok(2)])
    deny_reading(monkeypatch, path)
    assert [a.id for a in load_articles([readable]).articles] == ["a2"]  # only the denied file is refused
    with pytest.raises(LoadError) as info:
        load_articles([readable, path])
    assert str(info.value) == f"{path}: permission denied"
