"""Hostile input to every route of a real server process (``python -m service``): 10 MB bodies, million-character
fields, NUL bytes and bad UTF-8, path-like ids, deep nesting, wrong types, far dates; and a restart replaying it all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, admin_headers, copy_index, wait_until


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


@pytest.fixture
def hostile_server(demo_index: Path, tmp_path: Path):
    """A server of its own for each test: no test sees what another one wrote."""
    root = copy_index(demo_index, tmp_path / "hostile-index")
    server = ServerProcess(root, tmp_path / "server.log", poll_interval=0.5).start()
    yield server
    server.stop()


TEN_MB = b'{"title": "' + b"x" * 10_000_000 + b'"}'


def _chunks(total: int = 10_000_000):
    yield b'{"title": "'
    for _ in range(total // 500_000):
        yield b"x" * 500_000
    yield b'"}'


def test_ten_megabyte_bodies_are_413_on_every_body_route(hostile_server: ServerProcess) -> None:
    json_type = {"content-type": "application/json"}
    with hostile_server.client(headers=admin_headers()) as c:
        for method, path in (("POST", "/v1/related"), ("PUT", "/v1/articles/huge")):
            _error(c.request(method, path, content=TEN_MB, headers=json_type), 413, "body_too_large")
            _error(c.request(method, path, content=_chunks(), headers=json_type), 413, "body_too_large")
        for path in ("/v1/admin/reload", "/v1/articles/demo-001/related", "/healthz"):  # routes that take no body
            _error(c.post(path, content=TEN_MB, headers=json_type), 413, "body_too_large")
        assert c.get("/v1/articles/huge").status_code == 404
        assert c.get("/healthz").status_code == 200


def test_million_character_fields(hostile_server: ServerProcess, demo_index: Path, tmp_path: Path, embedder) -> None:
    title = "T" * 1_000_000
    with hostile_server.client(headers=admin_headers()) as c:
        _error(c.put("/v1/articles/long", json={"title": title}), 413, "body_too_large")  # over the 1 MB default
        _error(c.post("/v1/related", json={"title": title}), 413, "body_too_large")
    from fastapi.testclient import TestClient

    from recommender.settings import Settings
    from service import create_app

    settings = Settings(index_dir=copy_index(demo_index, tmp_path / "index"), admin_token="t", poll_interval=0,
                        max_body_bytes=20_000_000)  # fmt: skip
    with TestClient(create_app(settings, embedder=embedder)) as c:  # a raised limit: then the field limits answer
        assert "title" in _error(
            c.put("/v1/articles/long", json={"title": title}, headers=admin_headers("t")), 422, "invalid_request"
        )
        assert "title" in _error(c.post("/v1/related", json={"title": title}), 422, "invalid_request")
        assert "body" in _error(
            c.post("/v1/related", json={"title": "x", "body": "b" * 1_000_000}), 422, "invalid_request"
        )
        # (a URL cannot carry a million characters: httpx caps it at 64 KB, uvicorn at its header limit)
        assert "query" in _error(c.get("/v1/articles", params={"query": "q" * 60_000}), 422, "invalid_request")


def test_nul_bytes_and_invalid_utf8(hostile_server: ServerProcess) -> None:
    json_type = {"content-type": "application/json"}
    with hostile_server.client(headers=admin_headers()) as c:
        assert (
            c.put("/v1/articles/nul-fields", json={"title": "Harbour\x00 strike", "body": "a\x00b"}).status_code == 201
        )
        stored = c.get("/v1/articles/nul-fields").json()
        assert "\x00" not in stored["title"] + stored["body"]
        _error(c.put("/v1/articles/a%00b", json={"title": "x"}), 422, "invalid_request")
        _error(c.get("/v1/articles/a%00b/related"), 404, "article_not_found")
        assert c.get("/v1/articles", params={"query": "a\x00b", "section": "\x00"}).json()["total"] == 0
        for method, path in (("PUT", "/v1/articles/bad-utf8"), ("POST", "/v1/related")):
            _error(
                c.request(method, path, content=b'{"title": "caf\xe9 \xff"}', headers=json_type), 422, "invalid_request"
            )
        # bytes that are not UTF-8 in a percent-encoded id: refused for writes rather than stored as U+FFFD
        assert "UTF-8" in _error(c.put("/v1/articles/%FF%FE", json={"title": "x"}), 422, "invalid_request")
        _error(c.delete("/v1/articles/%FF"), 422, "invalid_request")
        _error(c.get("/v1/articles/%FF/related"), 404, "article_not_found")
        _error(c.get("/v1/articles/%FF"), 404, "article_not_found")


HOSTILE_IDS = {  # as sent in the path -> the id stored
    "..%2F..%2Fetc%2Fpasswd": "../../etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fshadow": "../../etc/shadow",
    "..%5C..%5Cwindows": "..\\..\\windows",
    "news/2026/08/story.html": "news/2026/08/story.html",
    "with%20space": "with space",
    "dots.and..more": "dots.and..more",
    "100%25": "100%",
    "%252e%252e%252f": "%2e%2e%2f",
    "~root": "~root",
    "%C3%BC%D0%B8%D0%B4": "üид",
}


def test_path_like_ids_stay_data(hostile_server: ServerProcess) -> None:
    root = hostile_server.index_dir
    before = {p for p in root.parent.rglob("*") if "live" not in p.parts}
    with hostile_server.client(headers=admin_headers()) as c:
        for sent, stored in HOSTILE_IDS.items():
            r = c.put(f"/v1/articles/{sent}", json={"title": f"Story {stored}", "body": "Dock workers walked out."})
            assert r.status_code == 201 and r.json()["id"] == stored, (sent, r.text)
            related = c.get(f"/v1/articles/{sent}/related")
            assert related.status_code == 200 and related.json()["article_id"] == stored
            assert stored not in [i["id"] for i in related.json()["items"]]
            assert c.get(f"/v1/articles/{sent}").json()["id"] == stored
            assert c.delete(f"/v1/articles/{sent}").status_code == 204
            assert c.get(f"/v1/articles/{sent}").status_code == 404
        # unencoded dot segments are resolved by the client before sending: they name no article route at all
        assert c.get("/v1/articles/../../etc/passwd").status_code == 404
    after = {p for p in root.parent.rglob("*") if "live" not in p.parts}
    assert after == before  # nothing derived from an id touched the file system


def test_nested_json_and_numbers_where_strings_belong(hostile_server: ServerProcess) -> None:
    json_type = {"content-type": "application/json"}
    deep = "[" * 100_000 + "]" * 100_000
    deep_object = '{"title": "x", "meta": ' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}"
    with hostile_server.client(headers=admin_headers()) as c:
        for method, path in (("POST", "/v1/related"), ("PUT", "/v1/articles/deep")):
            _error(c.request(method, path, content=deep, headers=json_type), 422, "invalid_request")
            _error(c.request(method, path, content=deep_object, headers=json_type), 422, "invalid_request")
        # moderately nested extra metadata is kept as data
        assert (
            c.put("/v1/articles/nested", json={"title": "x", "meta": json.loads("[" * 200 + "]" * 200)}).status_code
            == 201
        )
        for body, field in (
            ({"title": 5}, "title"),
            ({"title": "x", "section": 12}, "section"),
            ({"title": "x", "tags": [1, 2]}, "tags"),
            ({"title": "x", "authors": [{"name": "a"}]}, "authors"),
            ({"title": "x", "url": 3.5}, "url"),
            ({"title": "x", "body": True}, "body"),
            ({"title": "x", "published_at": 1_700_000_000}, "published_at"),
            ({"title": ["x"]}, "title"),
        ):
            assert field in _error(c.put("/v1/articles/typed", json=body), 422, "invalid_request")
            assert field in _error(c.post("/v1/related", json=body), 422, "invalid_request")
        assert "id" in _error(c.put("/v1/articles/typed", json={"title": "x", "id": 5}), 422, "invalid_request")
        for params in ({"k": "5x"}, {"k": "1e400"}, {"freshness": "nan"}, {"diversity": "[1]"}):
            _error(c.get("/v1/articles/demo-006/related", params=params), 422, "invalid_request")
        _error(c.get("/v1/articles", params={"limit": "ten"}), 422, "invalid_request")
        assert c.get("/v1/articles/typed").status_code == 404


ODD_DATES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",  # before the first representable UTC instant
    "9999-12-31T23:59:59-14:00",  # after the last one
    "9999-12-31T23:59:59.999999Z",
    "2026-08-01T10:00:00+05:45",
    "2026-08-01T10:00:00-23:59",
    "1969-12-31T23:59:59Z",
    "2026-08-01",
]


def test_far_dates_and_odd_time_zones(hostile_server: ServerProcess) -> None:
    with hostile_server.client(headers=admin_headers()) as c:
        for n, date in enumerate(ODD_DATES):
            r = c.put(
                f"/v1/articles/dated/{n}",
                json={"title": f"Harbour strike day {n}", "published_at": date, "updated_at": date},
            )
            assert r.status_code == 201, (date, r.text)
            stored = c.get(f"/v1/articles/dated/{n}").json()["published_at"]
            assert stored.endswith("Z"), stored
            params = {"since": date, "until": "9999-12-31T23:59:59-14:00", "freshness": 1, "k": 10}
            assert c.get(f"/v1/articles/dated/{n}/related", params=params).status_code == 200
            assert c.get("/v1/articles/demo-006/related", params={"until": date}).status_code == 200
            body = {"title": "Harbour strike", "published_at": date, "since": date, "until": date, "freshness": 0.01}
            assert c.post("/v1/related", json=body).status_code == 200
        assert c.get("/v1/articles/dated/4").json()["published_at"] == "2026-08-01T04:15:00Z"
        assert c.get("/v1/articles/dated/5").json()["published_at"] == "2026-08-02T09:59:00Z"
        for bad in (
            "-0001-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-08-01T10:00:00+24:00",
            "1e10",
        ):
            assert "published_at" in _error(
                c.put("/v1/articles/dated/bad", json={"title": "x", "published_at": bad}), 422, "invalid_request"
            )
            assert "since" in _error(
                c.get("/v1/articles/demo-006/related", params={"since": bad}), 422, "invalid_request"
            )
            assert "until" in _error(c.post("/v1/related", json={"title": "x", "until": bad}), 422, "invalid_request")


def test_hostile_live_changes_survive_a_restart(hostile_server: ServerProcess, tmp_path: Path) -> None:
    """Hostile ids, odd dates, markup and control text in the log: a second service started on a copy (log
    included) replays it and serves the same state."""
    with hostile_server.client(headers=admin_headers()) as c:
        for n, (sent, stored) in enumerate(HOSTILE_IDS.items()):
            body = {"title": f"Story {stored} <b>x</b>", "published_at": ODD_DATES[n % len(ODD_DATES)], "k": {"a": n}}
            assert c.put(f"/v1/articles/{sent}", json=body).status_code == 201, sent
        assert c.put("/v1/articles/nul", json={"title": "Harbour\x00 strike", "body": "a\x00b"}).status_code == 201
        assert c.delete(f"/v1/articles/{next(iter(HOSTILE_IDS))}").status_code == 204
        assert c.put(
            "/v1/articles/odd%2Fid", json={"title": "\u202eRTL 🙂 <script>x</script>", "published_at": ODD_DATES[1]}
        ).status_code in (200, 201)
        before = c.get("/v1/index").json()
    root = tmp_path / "index"
    shutil.copytree(hostile_server.index_dir, root, ignore=shutil.ignore_patterns("build.lock", "*.lock"))
    restarted = ServerProcess(root, tmp_path / "restarted.log", poll_interval=0)
    try:
        restarted.start()
        with restarted.client() as c:
            wait_until(lambda: c.get("/readyz").status_code == 200, 30, 0.1, "readiness after the restart")
            after = c.get("/v1/index").json()
            assert after["article_count"] == before["article_count"] and after["wal_seq"] == before["wal_seq"]
            assert c.get("/v1/articles/odd%2Fid/related").status_code == 200
    finally:
        restarted.stop()
