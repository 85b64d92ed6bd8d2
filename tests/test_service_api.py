"""The FastAPI app in-process: contract v1, errors, admin auth, caching/ETag/304, CORS, metrics, the page."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from recommender.settings import Settings
from service import create_app
from service.schemas import ArticleDetail, ArticleList, IndexInfo, RelatedResponse
from tests.support.paths import REPO
from tests.support.server import ADMIN_TOKEN, admin_headers, copy_index, publish_copy

RELATED = "/v1/articles/{}/related"


@pytest.fixture
def index_dir(demo_index: Path, tmp_path: Path) -> Path:
    return copy_index(demo_index, tmp_path / "index")


class _ReadyClient(TestClient):
    """A TestClient whose ``with`` block starts once the app's background load has been tried (the server itself
    answers at once and reports ``loading`` until then)."""

    def __enter__(self) -> _ReadyClient:
        super().__enter__()
        assert self.app.state.live.wait_loaded(60)
        return self


def _client(index_dir: Path, embedder, **settings) -> TestClient:
    defaults = {"admin_token": ADMIN_TOKEN, "poll_interval": 0, "cache_max_age": 120}
    return _ReadyClient(create_app(Settings(index_dir=index_dir, **{**defaults, **settings}), embedder=embedder))


@pytest.fixture
def client(index_dir: Path, embedder):
    with _client(index_dir, embedder) as c:
        yield c


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def _draft(**extra) -> dict:
    return {"title": "Tessera probe enters orbit of comet Okafor-Lind", "body": "Mission scientists cheered.", **extra}


# -- related by id --------------------------------------------------------------------------------
def test_related_contract(client: TestClient) -> None:
    r = client.get(RELATED.format("demo-006"))
    assert r.status_code == 200
    body = RelatedResponse.model_validate(r.json()).model_dump()
    assert body["article_id"] == "demo-006" and body["index_version"]
    # k defaults to 6; the floor leaves the box short and says by how much
    assert len(body["items"]) + body["below_floor"] == 6 and len(body["items"]) >= 3
    assert all(0.5 <= item["relevance"] <= 1 and item["fallback"] is False for item in body["items"])
    assert set(r.json()["items"][0]) >= {"id", "title", "url", "published_at", "section", "score", "reasons"}
    reason_types = {reason["type"] for item in r.json()["items"] for reason in item["reasons"]}
    assert "similar_meaning" in reason_types
    assert len(client.get(RELATED.format("demo-006"), params={"k": 1}).json()["items"]) == 1
    assert len(client.get(RELATED.format("demo-006"), params={"k": 50, "min_relevance": 0}).json()["items"]) == 50


def test_related_options(client: TestClient) -> None:
    r = client.get(RELATED.format("demo-006"), params={"section": "world", "k": 10})
    assert r.status_code == 200 and all(i["section"] == "world" for i in r.json()["items"])
    r = client.get(RELATED.format("demo-006"), params={"exclude_section": "world", "k": 10})
    assert all(i["section"] != "world" for i in r.json()["items"])
    top = [i["id"] for i in client.get(RELATED.format("demo-006")).json()["items"]]
    r = client.get(RELATED.format("demo-006"), params={"exclude": ",".join(top[:3])})
    assert not {i["id"] for i in r.json()["items"]} & set(top[:3])
    r = client.get(RELATED.format("demo-006"), params={"since": "2026-08-10T00:00:00Z", "until": "2026-09-01"})
    assert r.status_code == 200
    assert all("2026-08-10" <= i["published_at"] <= "2026-09-01T00:00:00Z" for i in r.json()["items"])
    r = client.get(RELATED.format("demo-006"), params={"tag": "ceasefire"})
    assert r.status_code == 200 and r.json()["items"]
    r = client.get(RELATED.format("demo-006"), params={"freshness": 3, "diversity": 0.5, "min_relevance": 0})
    assert r.status_code == 200 and len(r.json()["items"]) == 6


@pytest.mark.parametrize(
    "params, field",
    [
        ({"k": 0}, "k"),
        ({"k": 51}, "k"),
        ({"k": "six"}, "k"),
        ({"freshness": -1}, "freshness"),
        ({"freshness": "inf"}, "freshness"),
        ({"diversity": 1.01}, "diversity"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
    ],
)
def test_invalid_parameters_are_422_naming_the_field(client: TestClient, params: dict, field: str) -> None:
    error = _error(client.get(RELATED.format("demo-006"), params=params), 422, "invalid_request")
    assert field in error["message"]
    assert any(field in f for f in error["fields"])


def test_dates_without_a_utc_equivalent_are_open_bounds(client: TestClient) -> None:
    params = {"since": "0001-01-01T00:19:07+18:00", "until": "9999-12-31T23:00:00-10:00", "k": 50, "min_relevance": 0}
    assert len(client.get(RELATED.format("demo-006"), params=params).json()["items"]) == 50


def test_unknown_article_is_404(client: TestClient) -> None:
    error = _error(client.get(RELATED.format("no-such-article")), 404, "article_not_found")
    assert "no-such-article" in error["message"]
    # an unknown article never matches a validator, not even "*"
    r = client.get(RELATED.format("no-such-id"), headers={"If-None-Match": "*"})
    assert _error(r, 404, "article_not_found")["message"] == "article not found: 'no-such-id'"
    assert "etag" not in r.headers
    _error(client.get("/v1/articles/no-such-article"), 404, "article_not_found")
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    _error(client.post("/healthz"), 405, "method_not_allowed")


def test_if_none_match_star_needs_an_existing_article(client: TestClient) -> None:
    star = {"If-None-Match": "*"}
    assert client.get(RELATED.format("demo-001"), headers=star).status_code == 304  # by the route
    assert client.get(RELATED.format("demo-001")).status_code == 200
    assert client.get(RELATED.format("demo-001"), headers=star).status_code == 304  # by the fast path
    assert client.delete("/v1/articles/demo-001", headers=admin_headers()).status_code == 204
    r = client.get(RELATED.format("demo-001"), headers=star)
    assert _error(r, 404, "article_not_found")["message"] == "article not found: 'demo-001'"


def _days_apart(a: str, b: str) -> float:
    from datetime import datetime

    return abs((datetime.fromisoformat(a) - datetime.fromisoformat(b)).total_seconds()) / 86400


def test_language_option(client: TestClient) -> None:
    german = _draft(title="Sonde Tessera erreicht den Kometen Okafor-Lind", language="de", section="science")
    assert client.put("/v1/articles/live-de", json=german, headers=admin_headers()).status_code == 201
    everything = client.get(RELATED.format("demo-002"), params={"k": 50, "min_relevance": 0}).json()["items"]
    assert "live-de" in [i["id"] for i in everything]
    only_de = client.get(RELATED.format("demo-002"), params={"language": "de", "min_relevance": 0})
    assert only_de.status_code == 200 and [i["id"] for i in only_de.json()["items"]] == ["live-de"]
    only_en = client.get(
        RELATED.format("demo-002"), params={"language": " EN ", "k": 50, "min_relevance": 0}
    )  # normalised
    assert len(only_en.json()["items"]) == 50 and "live-de" not in [i["id"] for i in only_en.json()["items"]]
    assert only_de.headers["etag"] != only_en.headers["etag"]  # part of the cache key
    none = client.get(RELATED.format("demo-002"), params={"language": "fr"})
    assert none.status_code == 200 and none.json()["items"] == []
    # POST: the query option filters; "language" in the body is the draft's own language, not a filter
    draft = client.post("/v1/related", params={"language": "de"}, json=_draft(language="en"))
    assert [i["id"] for i in draft.json()["items"]] == ["live-de"]
    assert "live-de" in [i["id"] for i in client.post("/v1/related", json=_draft(language="fr", k=50)).json()["items"]]


def test_window_option(client: TestClient) -> None:
    source = client.get("/v1/articles/demo-006").json()["published_at"]
    wide = client.get(RELATED.format("demo-006"), params={"k": 50}).json()["items"]
    assert max(_days_apart(i["published_at"], source) for i in wide) > 3  # so the window has work to do
    r = client.get(RELATED.format("demo-006"), params={"k": 50, "window": 3})
    assert r.status_code == 200 and 0 < len(r.json()["items"]) < 50
    assert all(_days_apart(i["published_at"], source) <= 3 for i in r.json()["items"])
    half = client.get(RELATED.format("demo-006"), params={"k": 50, "window": 0.5}).json()["items"]
    assert all(_days_apart(i["published_at"], source) <= 0.5 for i in half) and len(half) < len(r.json()["items"])
    # drafts: counted from the draft's published_at; the body wins over the query
    dated = _draft(published_at="2026-08-20T12:00:00Z", k=50)
    for params, body in (({"window": 2}, dated), ({"window": 30}, {**dated, "window": 2})):
        items = client.post("/v1/related", params=params, json=body).json()["items"]
        assert items and all(_days_apart(i["published_at"], "2026-08-20T12:00:00Z") <= 2 for i in items)
        assert len(items) < 50
    # a source without a date has no window to apply (as for an indexed article without one)
    undated = client.post("/v1/related", params={"window": 2}, json=_draft(k=50)).json()["items"]
    assert undated == client.post("/v1/related", json=_draft(k=50)).json()["items"]


@pytest.mark.parametrize(
    "params, message, field",
    [
        ({"window": 0}, "window: Input should be greater than 0", "query.window"),
        ({"window": -2}, "window: Input should be greater than 0", "query.window"),
        ({"window": "nan"}, "window: Input should be a finite number", "query.window"),
        (
            {"window": "week"},
            "window: expected a number",
            "query.window",
        ),
        ({"window": 40_000}, "window: Input should be less than or equal to 36500", "query.window"),
        ({"language": ""}, "language: must be a language code of 1 to 35 characters, e.g. en", "query.language"),
        ({"language": "  "}, "language: must be a language code of 1 to 35 characters, e.g. en", "query.language"),
        ({"language": "x" * 36}, "language: must be a language code of 1 to 35 characters, e.g. en", "query.language"),
    ],
)
def test_invalid_language_and_window(client: TestClient, params: dict, message: str, field: str) -> None:
    for r in (
        client.get(RELATED.format("demo-006"), params=params),
        client.post("/v1/related", params=params, json=_draft(published_at="2026-08-20T12:00:00Z")),
    ):
        error = _error(r, 422, "invalid_request")
        assert (error["message"], error["fields"]) == (message, [field])


@pytest.mark.parametrize(
    "body, params, message, field",
    [
        ({"window": 0}, {}, "window: Input should be greater than 0", "body.window"),
        ({"window": "7"}, {}, "window: expected a number", "body.window"),
        ({"window": True}, {}, "window: expected a number", "body.window"),
        ({"window": 1e6}, {}, "window: Input should be less than or equal to 36500", "body.window"),
    ],
)
def test_invalid_window_in_a_draft(client: TestClient, body: dict, params: dict, message: str, field: str) -> None:
    error = _error(client.post("/v1/related", params=params, json=_draft(**body)), 422, "invalid_request")
    assert (error["message"], error["fields"]) == (message, [field])


@pytest.mark.parametrize(
    "article_id",
    ["news/2026/08/story.html", "with space", "50% off", "dots.and-dashes_", "ünïcödé/ид", "related/at-the-start"],
)
def test_ids_with_slashes_dots_spaces_and_percent(client: TestClient, article_id: str) -> None:
    path = "/v1/articles/" + quote(article_id, safe="/")
    r = client.put(path, json=_draft(), headers=admin_headers())
    assert r.status_code == 201, r.text
    assert r.json()["id"] == article_id
    related = client.get(path + "/related")
    assert related.status_code == 200 and related.json()["article_id"] == article_id
    encoded = "/v1/articles/" + quote(article_id, safe="")  # %2F for the slashes works too
    assert client.get(encoded + "/related").json()["article_id"] == article_id
    assert client.get(path).json()["id"] == article_id
    assert client.delete(path, headers=admin_headers()).status_code == 204


def test_related_paths_are_read_only(client: TestClient) -> None:
    # ".../related" always means the related list, so an id cannot end with it: writes there are 405.
    r = client.put("/v1/articles/ends/related", json=_draft(), headers=admin_headers())
    assert _error(r, 405, "method_not_allowed") and r.headers["allow"] == "GET"
    r = client.post("/v1/articles/demo-001")
    _error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "DELETE, GET, PUT"


# -- drafts ----------------------------------------------------------------------------------------
def test_post_related_for_a_draft(client: TestClient) -> None:
    r = client.post("/v1/related", json=_draft(k=3, section="science", story_id="kept-as-extra"))
    assert r.status_code == 200, r.text
    body = RelatedResponse.model_validate(r.json())
    assert body.article_id is None and len(body.items) == 3
    assert any("Okafor-Lind" in item.title for item in body.items)
    assert r.headers["cache-control"] == "no-store"


def test_post_related_options_in_body_and_query(client: TestClient) -> None:
    r = client.post("/v1/related", params={"section": "world", "k": 2, "min_relevance": 0}, json=_draft())
    assert (
        r.status_code == 200 and len(r.json()["items"]) == 2 and all(i["section"] == "world" for i in r.json()["items"])
    )
    r = client.post("/v1/related", params={"k": 2}, json=_draft(k=4.0, exclude_section=["science"], min_relevance=0))
    assert len(r.json()["items"]) == 4 and all(i["section"] != "science" for i in r.json()["items"])
    own = client.post("/v1/related", json=_draft(id="demo-002", k=10)).json()
    assert "demo-002" not in [i["id"] for i in own["items"]]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"body": "no title"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x", "k": 0}, "k"),
        ({"title": "x", "tags": "not-a-list-is-ok", "published_at": "soon"}, "published_at"),
        ({"title": "x", "diversity": 7}, "diversity"),
        ({"title": 5}, "title"),
        ({"title": "x", "k": "5"}, "k"),
        ({"title": "x", "k": True}, "k"),
        ({"title": "x", "k": 5.5}, "k"),
        ({"title": "x", "freshness": "7"}, "freshness"),
    ],
)
def test_post_related_invalid_bodies(client: TestClient, body: dict, field: str) -> None:
    error = _error(client.post("/v1/related", json=body), 422, "invalid_request")
    assert field in error["message"]


@pytest.mark.parametrize(
    "content, content_type, message",
    [
        (
            b"{not json",
            "application/json",
            "body: not valid JSON (Expecting property name enclosed in double quotes at character 1)",
        ),
        (
            b'{"title": x}',
            "application/json",
            "body: not valid JSON (Expecting value at character 10)",
        ),
        (b"\xff\xfe", "application/json", "body: not valid JSON (Expecting value at character 0)"),
        (b"[1, 2]", "application/json", "body: expected a JSON object, got an array"),
        (b'"title"', "application/json", "body: expected a JSON object, got a string"),
        (b"7", "application/json", "body: expected a JSON object, got a number"),
        (b"", "application/json", "body: Field required"),
        (
            b'{"title": "x"}',
            "text/plain",
            "body: expected a JSON object with Content-Type: application/json, got Content-Type: text/plain",
        ),
        (
            b'{"title": "x"}',
            "application/x-www-form-urlencoded",
            (
                "body: expected a JSON object with Content-Type: application/json, "
                "got Content-Type: application/x-www-form-urlencoded"
            ),
        ),
    ],
)
def test_malformed_json_and_non_objects(client: TestClient, content: bytes, content_type: str, message: str) -> None:
    for method, path, headers in (("POST", "/v1/related", {}), ("PUT", "/v1/articles/a1", admin_headers())):
        r = client.request(method, path, content=content, headers={"content-type": content_type, **headers})
        error = _error(r, 422, "invalid_request")
        assert error["message"] == message
        assert error["fields"] == ["body"]
    assert client.get("/v1/index").json()["pending_changes"] == 0


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    big = b'{"title": "' + b"x" * 1_100_000 + b'"}'
    _error(client.post("/v1/related", content=big, headers={"content-type": "application/json"}), 413, "body_too_large")

    def chunks():  # no Content-Length: the limit applies while the body streams in
        yield b'{"title": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    r = client.put(
        "/v1/articles/streamed", content=chunks(), headers={"content-type": "application/json", **admin_headers()}
    )
    _error(r, 413, "body_too_large")
    assert client.get("/v1/articles/streamed").status_code == 404


def test_body_limit_is_configurable(index_dir: Path, embedder) -> None:
    with _client(index_dir, embedder, max_body_bytes=2048) as c:
        _error(c.post("/v1/related", json=_draft(body="word " * 1000)), 413, "body_too_large")
        assert c.post("/v1/related", json=_draft()).status_code == 200


# -- admin: auth, PUT, DELETE, reload -------------------------------------------------------------
def test_admin_auth(client: TestClient) -> None:
    for method, path in (("PUT", "/v1/articles/a1"), ("DELETE", "/v1/articles/demo-001"), ("POST", "/v1/admin/reload")):
        kwargs = {"json": _draft()} if method == "PUT" else {}
        r = client.request(method, path, **kwargs)
        _error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        _error(client.request(method, path, headers=admin_headers("wrong"), **kwargs), 403, "forbidden")
        _error(client.request(method, path, headers={"Authorization": "Basic abc"}, **kwargs), 401, "unauthorized")
        unicode = {"Authorization": "Bearer tökén-ünïcode".encode()}
        _error(client.request(method, path, headers=unicode, **kwargs), 403, "forbidden")
    assert client.get("/v1/articles/demo-001").status_code == 200  # nothing was deleted
    # auth comes before body validation: no hints about the body without a token
    _error(client.put("/v1/articles/a1", json={}), 401, "unauthorized")


def test_admin_disabled_without_a_token(index_dir: Path, embedder) -> None:
    with _client(index_dir, embedder, admin_token=None) as c:
        error = _error(c.put("/v1/articles/a1", json=_draft(), headers=admin_headers()), 403, "admin_disabled")
        assert "RECOMMENDER_ADMIN_TOKEN" in error["message"]
        _error(c.post("/v1/admin/reload"), 403, "admin_disabled")
        assert c.get(RELATED.format("demo-001")).status_code == 200  # reads stay public


def test_put_and_delete(client: TestClient) -> None:
    r = client.put(
        "/v1/articles/live-1",
        json=_draft(section="science", published_at="2026-08-20T10:00:00Z"),
        headers=admin_headers(),
    )
    assert r.status_code == 201 and r.json()["created"] is True and r.json()["wal_seq"] == 1
    related = client.get(RELATED.format("live-1")).json()
    assert related["items"] and any("Okafor-Lind" in i["title"] for i in related["items"])
    r = client.put(
        "/v1/articles/live-1",
        json=_draft(id="live-1", title="Replaced headline about comet Okafor-Lind"),
        headers=admin_headers(),
    )
    assert r.status_code == 200 and r.json()["created"] is False
    assert client.get("/v1/articles/live-1").json()["title"] == "Replaced headline about comet Okafor-Lind"
    info = IndexInfo.model_validate(client.get("/v1/index").json())
    assert info.pending_changes == 2 and info.article_count == 141

    assert client.delete("/v1/articles/live-1", headers=admin_headers()).status_code == 204
    _error(client.get(RELATED.format("live-1")), 404, "article_not_found")
    _error(client.delete("/v1/articles/live-1", headers=admin_headers()), 404, "article_not_found")
    assert client.get("/v1/index").json()["article_count"] == 140


def test_put_validation(client: TestClient) -> None:
    error = _error(
        client.put("/v1/articles/a1", json=_draft(id="other"), headers=admin_headers()), 422, "invalid_request"
    )
    assert "id" in error["message"]
    _error(client.put("/v1/articles/a1", json={"body": "no title"}, headers=admin_headers()), 422, "invalid_request")
    # the schema's title pattern agrees with the parser, which drops NUL characters
    pattern = client.get("/openapi.json").json()["components"]["schemas"]["ArticleIn"]["properties"]["title"]["pattern"]
    assert re.search(pattern, "\x00 ") is None and re.search(pattern, "\x00a")
    _error(client.put("/v1/articles/a1", json={"title": "\x00"}, headers=admin_headers()), 422, "invalid_request")
    error = _error(
        client.put("/v1/articles/a1", json=_draft(tags=[1, 2]), headers=admin_headers()), 422, "invalid_request"
    )
    assert "tags" in error["message"]
    error = _error(
        client.put("/v1/articles/" + "x" * 300, json=_draft(), headers=admin_headers()), 422, "invalid_request"
    )
    assert "id" in error["message"]
    error = _error(client.put("/v1/articles/%20padded", json=_draft(), headers=admin_headers()), 422, "invalid_request")
    assert "id" in error["message"]
    assert client.get("/v1/index").json()["pending_changes"] == 0  # nothing invalid was logged


def test_admin_reload(client: TestClient, index_dir: Path) -> None:
    r = client.post("/v1/admin/reload", headers=admin_headers())
    assert r.status_code == 200 and r.json()["changed"] is False
    name = publish_copy(index_dir)
    r = client.post("/v1/admin/reload", headers=admin_headers())
    assert r.status_code == 200 and r.json()["changed"] is True and r.json()["version"] == name
    assert client.get(RELATED.format("demo-001")).json()["index_version"] == name


# -- readiness ------------------------------------------------------------------------------------
def test_probes_and_index_info(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    info = IndexInfo.model_validate(client.get("/v1/index").json())
    assert info.ready and info.version == ready.json()["version"] and info.article_count == 140
    assert info.model == "all-MiniLM-L6-v2" and info.built_at and info.pending_changes == 0


def test_not_ready_without_an_index(tmp_path: Path, embedder) -> None:
    with _client(tmp_path / "empty", embedder) as c:
        assert c.get("/healthz").status_code == 200
        error = _error(c.get("/readyz"), 503, "not_ready")
        assert "recommender build" in error["message"]
        _error(c.get(RELATED.format("demo-001")), 503, "not_ready")
        _error(c.post("/v1/related", json=_draft()), 503, "not_ready")
        _error(c.get("/v1/articles"), 503, "not_ready")
        _error(c.put("/v1/articles/x", json=_draft(), headers=admin_headers()), 503, "not_ready")
        _error(c.post("/v1/admin/reload", headers=admin_headers()), 503, "not_ready")
        info = c.get("/v1/index").json()
        assert info["ready"] is False and info["reason"]


# -- caching --------------------------------------------------------------------------------------
def test_etag_cache_control_and_304(client: TestClient) -> None:
    r = client.get(RELATED.format("demo-006"), params={"k": 4})
    etag = r.headers["etag"]
    assert etag.startswith('"') and r.headers["cache-control"] == "public, max-age=120"
    again = client.get(RELATED.format("demo-006"), params={"k": 4})
    assert again.headers["etag"] == etag and again.json() == r.json()
    not_modified = client.get(RELATED.format("demo-006"), params={"k": 4}, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b"" and not_modified.headers["etag"] == etag
    assert (
        client.get(RELATED.format("demo-006"), params={"k": 4}, headers={"If-None-Match": f'"x", W/{etag}'}).status_code
        == 304
    )
    assert client.get(RELATED.format("demo-006"), params={"k": 5}, headers={"If-None-Match": etag}).status_code == 200
    # a live change invalidates: same URL, new ETag, old one no longer matches
    client.put("/v1/articles/live-2", json=_draft(), headers=admin_headers())
    changed = client.get(RELATED.format("demo-006"), params={"k": 4}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    listing = client.get("/v1/articles", params={"query": "comet"})
    assert (
        client.get(
            "/v1/articles", params={"query": "comet"}, headers={"If-None-Match": listing.headers["etag"]}
        ).status_code
        == 304
    )


def test_fast_path_hits_match_the_route_exactly(client: TestClient) -> None:
    url = RELATED.format("news/with%20space")
    client.put("/v1/articles/news/with%20space", json=_draft(), headers=admin_headers())
    first = client.get(url, params={"k": 3, "section": "science"})  # computed by the route
    second = client.get(url, params={"k": 3, "section": "science"})  # answered from the cache before routing
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    for header in ("etag", "cache-control", "content-type", "content-length"):
        assert first.headers[header] == second.headers[header]
    hits = client.get("/metrics").text
    assert "recommender_cache_hits_total 1.0" in hits
    assert 'route="/v1/articles/{article_id}/related",status="200"} 2.0' in hits
    # a delete changes the state: the cached bytes are never served again
    client.delete("/v1/articles/news/with%20space", headers=admin_headers())
    _error(client.get(url, params={"k": 3, "section": "science"}), 404, "article_not_found")


def test_cache_max_age_is_configurable(index_dir: Path, embedder) -> None:
    with _client(index_dir, embedder, cache_max_age=5) as c:
        assert c.get(RELATED.format("demo-001")).headers["cache-control"] == "public, max-age=5"
        assert c.get(RELATED.format("demo-001")).headers["cache-control"] == "public, max-age=5"


# -- CORS -----------------------------------------------------------------------------------------
def test_no_cors_by_default(client: TestClient) -> None:
    r = client.get(RELATED.format("demo-001"), headers={"Origin": "https://news.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_from_settings(index_dir: Path, embedder) -> None:
    with _client(index_dir, embedder, cors_origins=["https://news.example"]) as c:
        for _ in range(2):  # computed, then a cache hit: both carry the CORS headers
            r = c.get(RELATED.format("demo-001"), headers={"Origin": "https://news.example"})
            assert r.headers["access-control-allow-origin"] == "https://news.example"
        assert "etag" in r.headers["access-control-expose-headers"].lower()
        pre = c.options(
            RELATED.format("demo-001"),
            headers={"Origin": "https://news.example", "Access-Control-Request-Method": "GET"},
        )
        assert pre.status_code == 200
        other = c.get(RELATED.format("demo-001"), headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# -- listing, metrics, page, schema ----------------------------------------------------------------
def test_article_listing_and_detail(client: TestClient) -> None:
    listing = ArticleList.model_validate(client.get("/v1/articles", params={"query": "okafor", "limit": 2}).json())
    assert listing.total >= 2 and len(listing.items) == 2
    detail = ArticleDetail.model_validate(client.get("/v1/articles/" + listing.items[0].id).json())
    assert detail.body and detail.id == listing.items[0].id
    _error(client.get("/v1/articles", params={"limit": 0}), 422, "invalid_request")


def _samples(text: str) -> dict[tuple, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics(client: TestClient) -> None:
    client.get(RELATED.format("demo-006"))
    client.get(RELATED.format("demo-006"))
    client.get(RELATED.format("missing"))
    client.get("/some/random/path")
    big = b"{" + b" " * 1_100_000 + b"}"  # refused on its Content-Length, before routing
    json_type = {"content-type": "application/json"}
    _error(client.post("/v1/related", content=big, headers=json_type), 413, "body_too_large")
    _error(client.put("/v1/articles/news/a%20b", content=big, headers=json_type), 413, "body_too_large")
    _error(client.post("/static/app.js", content=big, headers=json_type), 413, "body_too_large")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    route = ("route", "/v1/articles/{article_id}/related")

    def labels(status: str, **extra: str) -> tuple:
        return tuple(sorted({"method": "GET", "route": route[1], "status": status, **extra}.items()))

    assert samples[("recommender_http_requests_total", labels("200"))] == 2
    assert samples[("recommender_http_requests_total", labels("404"))] == 1
    assert samples[("recommender_http_request_duration_seconds_count", labels("200"))] == 2
    assert samples[("recommender_http_request_duration_seconds_bucket", labels("200", le="+Inf"))] == 2
    unmatched = tuple(sorted({"method": "GET", "route": "unmatched", "status": "404"}.items()))
    assert samples[("recommender_http_requests_total", unmatched)] == 1
    # 413s answered by the body limit carry the route they were sent to (path converters never show)
    for method, template in (("POST", "/v1/related"), ("PUT", "/v1/articles/{article_id}")):
        too_large = tuple(sorted({"method": method, "route": template, "status": "413"}.items()))
        assert samples[("recommender_http_requests_total", too_large)] == 1
    static = tuple(sorted({"method": "POST", "route": "unmatched", "status": "413"}.items()))
    assert samples[("recommender_http_requests_total", static)] == 1  # no route template: a mount
    assert ":any_id" not in response.text and ":article_id" not in response.text
    assert "a%20b" not in response.text and "a b" not in response.text
    assert "/some/random/path" not in response.text  # attacker-chosen paths never become label values
    assert samples[("recommender_index_articles", ())] == 140
    assert samples[("recommender_index_ready", ())] == 1
    version = client.get("/v1/index").json()["version"]
    assert samples[("recommender_index_version_info", (("version", version),))] == 1
    # demo-006 twice (a miss, then a hit) and the unknown id (a miss)
    assert samples[("recommender_cache_hits_total", ())] == 1
    assert samples[("recommender_cache_misses_total", ())] == 2
    assert samples[("recommender_cache_hit_ratio", ())] == pytest.approx(1 / 3)


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Related Articles" in page.text and "/static/app.js" in page.text
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "innerHTML" not in js.text.replace("never innerHTML", "")
    assert client.get("/static/style.css").status_code == 200


def test_openapi_contract(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    related = paths["/v1/articles/{article_id}/related"]["get"]
    names = {p["name"] for p in related["parameters"]}
    assert names == {
        "article_id",
        "k",
        "section",
        "exclude_section",
        "tag",
        "exclude",
        "since",
        "until",
        "freshness",
        "diversity",
        "language",
        "window",
        "min_relevance",
        "fill",
        "visitor",
    }
    window = next(p for p in related["parameters"] if p["name"] == "window")["schema"]["anyOf"][0]
    assert (window["type"], window["exclusiveMinimum"]) == ("number", 0)
    language = next(p for p in related["parameters"] if p["name"] == "language")["schema"]["anyOf"][0]
    assert (language["minLength"], language["maxLength"]) == (1, 35)
    draft = schema["components"]["schemas"]["DraftRelatedRequest"]["properties"]
    assert "window" in draft and "language" in draft  # language: the draft's own (the filter is a query option)
    k = next(p for p in related["parameters"] if p["name"] == "k")["schema"]
    assert (k["minimum"], k["maximum"], k["default"]) == (1, 50, 6)
    assert related["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RelatedResponse")
    assert {"put", "delete", "get"} <= set(paths["/v1/articles/{article_id}"])
    for path in (
        "/v1/related",
        "/v1/index",
        "/v1/admin/reload",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/articles",
        "/v1/events",
    ):
        assert path in paths
    item = schema["components"]["schemas"]["RelatedItem"]
    assert set(item["required"]) == {"id", "title", "url", "published_at", "section", "score", "reasons"}


def test_demo_page_inserts_text_never_markup() -> None:
    """The browser test (test_page_browser.py) checks a <script> title on the live page; this checks the code
    itself, so it holds where no browser is installed: no API that parses strings as HTML."""
    script = (REPO / "service" / "static" / "app.js").read_text(encoding="utf-8")
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, sink
    assert "textContent" in code


def test_relevance_floor_options_and_errors(client: TestClient) -> None:
    """Issue 13: the floor, below_floor and fill through HTTP."""
    body = client.get(RELATED.format("demo-006"), params={"k": 20}).json()
    assert len(body["items"]) + body["below_floor"] == 20 and body["below_floor"] > 0
    filled = client.get(RELATED.format("demo-006"), params={"k": 20, "fill": "recent"}).json()
    assert len(filled["items"]) == 20 and filled["below_floor"] == body["below_floor"]
    assert sum(i["fallback"] for i in filled["items"]) == body["below_floor"]
    for params, message in [
        ({"min_relevance": 1.5}, "min_relevance: Input should be less than or equal to 1"),
        ({"min_relevance": "high"}, "min_relevance: expected a number"),
        ({"fill": "random"}, "fill: Input should be 'none', 'section_recent' or 'recent'"),
    ]:
        r = client.get(RELATED.format("demo-006"), params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        assert r.json()["error"]["message"] == message
