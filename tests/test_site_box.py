"""The box on a real page (issue 14): lookup by URL, images, editorial pins and blocks, expiry; through the API, the
CLI, live writes, a restart and a nightly build."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.build import build_index
from recommender.changelog import ChangeLog
from recommender.cli import app as cli
from recommender.editorial import Editorial, EditorialChange
from recommender.engine import Recommender
from recommender.serving import LiveIndex
from recommender.settings import Settings
from recommender.urls import normalize_url
from service import create_app
from tests.support.paths import DEMO_CORPUS, write_jsonl
from tests.support.server import ADMIN_TOKEN, admin_headers, copy_index

BASE = "https://example-news.test/world/lisgard-summit-ends-without-ceasefire-deal-as-talks-stall"  # demo-006


@pytest.fixture
def index_dir(demo_index: Path, tmp_path: Path) -> Path:
    return copy_index(demo_index, tmp_path / "index")


@pytest.fixture
def client(index_dir: Path, embedder):
    app = create_app(Settings(index_dir=index_dir, admin_token=ADMIN_TOKEN, poll_interval=0), embedder=embedder)
    with TestClient(app) as c:
        assert app.state.live.wait_loaded(60)
        yield c


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# -- URLs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, key",
    [
        ("https://www.Example.com:443/world/story/?utm_source=x&b=2&a=1#top", "example.com/world/story?a=1&b=2"),
        ("http://example.com/world/story", "example.com/world/story"),
        ("https://amp.example.com/world/story", "example.com/world/story"),
        ("https://example.com/amp/world/story", "example.com/world/story"),
        ("https://example.com/world/story/amp/", "example.com/world/story"),
        ("https://example.com/world/story.amp.html", "example.com/world/story.html"),
        ("https://example.com/world/story?amp=1&fbclid=x&gclid=y", "example.com/world/story"),
        ("https://example.com/world/story?outputType=amp", "example.com/world/story"),
        ("https://example.com/caf%C3%A9/%7Eold", "example.com/caf%C3%A9/~old"),
        ("https://example.com:8080/", "example.com:8080"),
        ("javascript:alert(1)", None),
        ("/relative", None),
    ],
)
def test_normalize_url(url: str, key: str | None) -> None:
    assert normalize_url(url) == key


def test_tracking_parameters_are_configurable() -> None:
    assert normalize_url("https://x.test/a?ref=nl&id=3", ["ref"]) == "x.test/a?id=3"
    assert normalize_url("https://x.test/a?utm_medium=m", ["ref"]) == "x.test/a?utm_medium=m"


def test_related_by_url_is_related_by_id(client: TestClient) -> None:
    by_id = _ids(client.get("/v1/articles/demo-006/related", params={"k": 4}))
    for variant in (BASE, BASE + "/?utm_campaign=x#comments", BASE.replace("https://", "http://www.") + "/amp"):
        r = client.get("/v1/related", params={"url": variant, "k": 4})
        assert _ids(r) == by_id and r.json()["article_id"] == "demo-006"
    missing = client.get("/v1/related", params={"url": "https://example-news.test/nope?utm_source=a"})
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "article_not_found",
        "message": "no article with URL: 'example-news.test/nope'",
    }
    assert client.get("/v1/related").status_code == 422
    assert client.get("/v1/related", params={"url": BASE, "k": 0}).status_code == 422


def test_live_writes_update_the_url_map_and_canonical_wins(client: TestClient) -> None:
    body = {
        "title": "Harbour strike ends",
        "url": "https://site.test/a?amp=1",
        "canonical_url": "https://site.test/canonical",
    }
    assert client.put("/v1/articles/live-1", json=body, headers=admin_headers()).status_code == 201
    assert client.get("/v1/related", params={"url": "https://site.test/canonical/"}).json()["article_id"] == "live-1"
    assert client.get("/v1/related", params={"url": "https://site.test/a"}).status_code == 404  # canonical_url wins
    assert client.delete("/v1/articles/live-1", headers=admin_headers()).status_code == 204
    assert client.get("/v1/related", params={"url": "https://site.test/canonical"}).status_code == 404


def test_cli_related_by_url(demo_index: Path) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        cli, ["related", "--url", BASE + "?utm_source=x", "--index-dir", str(demo_index), "-k", "2"]
    )
    assert result.exit_code == 0 and result.output.startswith("Related to demo-006: ")
    unknown = CliRunner().invoke(cli, ["related", "--url", "https://nope.test/x", "--index-dir", str(demo_index)])
    assert unknown.exit_code == 1 and unknown.stderr.strip() == "error: no article with URL: 'nope.test/x'"


def test_a_build_counts_articles_sharing_a_url(tmp_path: Path, embedder) -> None:
    rows = [
        {"id": "a", "title": "Harbour strike day one", "url": "https://x.test/strike"},
        {"id": "b", "title": "Harbour strike day two", "url": "https://x.test/strike/?utm_source=feed"},
        {"id": "c", "title": "Flood warning for the Teyna", "url": "https://x.test/flood"},
    ]
    report = build_index(
        [write_jsonl(tmp_path / "e.jsonl", rows)],
        Settings(index_dir=tmp_path / "idx"),
        embedder=embedder,
        progress=False,
    )
    assert report.counts["duplicate_urls"] == 2 and report.duplicate_urls == [
        {"url": "x.test/strike", "ids": ["a", "b"]}
    ]
    assert "duplicate_urls 2" in report.summary()
    assert Recommender.open(tmp_path / "idx").resolve_url("https://x.test/strike") == "b"  # the last one


# -- images and URL schemes ----------------------------------------------------------------------------------
def test_images_pass_through_and_only_http_is_accepted(client: TestClient) -> None:
    body = {
        "title": "Tessera probe sends first images from comet Okafor-Lind",
        "image_url": "https://img.test/t.jpg",
        "image_alt": "The comet",
    }
    assert client.put("/v1/articles/with-image", json=body, headers=admin_headers()).status_code == 201
    item = next(
        i
        for i in client.get("/v1/articles/demo-041/related", params={"k": 50}).json()["items"]
        if i["id"] == "with-image"
    )
    assert (item["image_url"], item["image_alt"]) == ("https://img.test/t.jpg", "The comet")
    for bad in ("javascript:alert(1)", "data:image/png;base64,AAAA", "ftp://img.test/x.jpg"):
        r = client.put("/v1/articles/bad-image", json={"title": "x", "image_url": bad}, headers=admin_headers())
        assert r.status_code == 422 and r.json()["error"]["fields"] == ["body.image_url"]


# -- editorial -----------------------------------------------------------------------------------------------
def test_pins_come_first_in_order_and_blocks_win(client: TestClient) -> None:
    ranked = _ids(client.get("/v1/articles/demo-006/related", params={"k": 6}))
    pins = ["demo-100", "demo-050"]
    r = client.put("/v1/editorial/pins/demo-006", json={"ids": pins}, headers=admin_headers())
    assert r.status_code == 200 and r.json()["editorial"]["pins"] == {"demo-006": pins}
    box = client.get("/v1/articles/demo-006/related", params={"k": 6}).json()["items"]
    assert [i["id"] for i in box[:2]] == pins and [i["reasons"] for i in box[:2]] == [[{"type": "pinned"}]] * 2
    assert [i["id"] for i in box[2:]] == [i for i in ranked if i not in pins][:4]
    # a pin that fails the request's filters is not shown (demo-100 is sport, demo-050 science)
    assert _ids(client.get("/v1/articles/demo-006/related", params={"section": "science"}))[0] == "demo-050"
    assert "demo-100" not in _ids(client.get("/v1/articles/demo-006/related", params={"section": "science", "k": 50}))
    # blocks win over pins, everywhere
    assert client.put("/v1/editorial/blocks/articles/demo-100", headers=admin_headers()).status_code == 200
    assert "demo-100" not in _ids(client.get("/v1/articles/demo-006/related", params={"k": 50}))
    assert "demo-100" not in _ids(client.get("/v1/articles/demo-101/related", params={"k": 50}))
    assert client.delete("/v1/editorial/blocks/articles/demo-100", headers=admin_headers()).status_code == 200
    assert _ids(client.get("/v1/articles/demo-006/related"))[0] == "demo-100"
    assert client.delete("/v1/editorial/pins/demo-006", headers=admin_headers()).status_code == 200
    assert _ids(client.get("/v1/articles/demo-006/related", params={"k": 6})) == ranked


def test_section_and_pair_blocks(client: TestClient) -> None:
    first = _ids(client.get("/v1/articles/demo-006/related"))[0]
    r = client.put("/v1/editorial/blocks/pairs", params={"a": first, "b": "demo-006"}, headers=admin_headers())
    assert r.status_code == 200 and r.json()["editorial"]["blocks"]["pairs"] == [sorted([first, "demo-006"])]
    assert first not in _ids(client.get("/v1/articles/demo-006/related", params={"k": 50}))
    assert "demo-006" not in _ids(client.get(f"/v1/articles/{first}/related", params={"k": 50}))
    assert client.put("/v1/editorial/blocks/sections/World", headers=admin_headers()).status_code == 200
    sections = {i["section"] for i in client.get("/v1/articles/demo-001/related", params={"k": 50}).json()["items"]}
    assert "world" not in {s.lower() for s in sections if s}
    state = client.get("/v1/editorial", headers=admin_headers()).json()
    assert state["blocks"]["sections"] == ["world"]


@pytest.mark.parametrize(
    "method, path, kwargs, status, field",
    [
        ("put", "/v1/editorial/pins/demo-006", {"json": {"ids": ["x"] * 51}}, 422, "body.ids"),
        ("put", "/v1/editorial/pins/demo-006", {"json": {"ids": ["a\nb"]}}, 422, "body.ids.0"),
        ("put", "/v1/editorial/pins/demo-006", {"json": {"ids": "demo-001"}}, 422, "body.ids"),
        ("put", "/v1/editorial/blocks/pairs", {"params": {"a": "x"}}, 422, "query.b"),
        ("delete", "/v1/editorial/pins/demo-006", {}, 404, None),
        ("delete", "/v1/editorial/blocks/articles/never", {}, 404, None),
        ("delete", "/v1/editorial/blocks/sections/none", {}, 404, None),
    ],
)
def test_editorial_validation(
    client: TestClient, method: str, path: str, kwargs: dict, status: int, field: str | None
) -> None:
    r = client.request(method.upper(), path, headers=admin_headers(), **kwargs)
    assert r.status_code == status, r.text
    if field:
        assert r.json()["error"]["fields"] == [field]


def test_self_pins_and_one_article_pairs_change_nothing(client: TestClient) -> None:
    r = client.put("/v1/editorial/pins/demo-006", json={"ids": ["demo-006", "demo-050"]}, headers=admin_headers())
    assert r.status_code == 200 and r.json()["editorial"]["pins"] == {"demo-006": ["demo-050"]}
    seq = r.json()["wal_seq"]
    same = client.put("/v1/editorial/blocks/pairs", params={"a": "x", "b": "x"}, headers=admin_headers())
    assert (
        same.status_code == 200 and same.json()["wal_seq"] == seq and same.json()["editorial"]["blocks"]["pairs"] == []
    )


def test_editorial_routes_need_the_token(client: TestClient) -> None:
    assert client.get("/v1/editorial").status_code == 401
    assert client.put("/v1/editorial/blocks/articles/x", headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_editorial_changes_survive_a_restart_and_are_folded_into_the_next_build(index_dir: Path, embedder) -> None:
    live = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=embedder)
    live.load()
    live.change_editorial(EditorialChange("pins", ("demo-006",), ("demo-100",)))
    live.change_editorial(EditorialChange("section", ("culture",), True))
    restarted = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=embedder)
    restarted.load()
    assert (
        restarted.editorial().pins_for("demo-006") == ("demo-100",)
        and "culture" in restarted.editorial().blocked_sections
    )
    report = build_index([DEMO_CORPUS], Settings(index_dir=index_dir), embedder=embedder, progress=False)
    assert report.counts["pins"] == 1 and report.counts["blocks"] == 1 and ChangeLog(index_dir).entries() == []
    rec = Recommender.open(index_dir)
    assert (
        rec.editorial.pins_for("demo-006") == ("demo-100",) and rec.related("demo-006", 3)[0].article.id == "demo-100"
    )
    # the next night carries the state forward (no editorial.json beside the export)
    build_index([DEMO_CORPUS], Settings(index_dir=index_dir), embedder=embedder, progress=False)
    assert Recommender.open(index_dir).editorial.blocked_sections == frozenset({"culture"})


def test_an_editorial_json_beside_the_export_is_the_base(tmp_path: Path, embedder) -> None:
    export = tmp_path / "export" / "articles.jsonl"
    export.parent.mkdir()
    export.write_text(DEMO_CORPUS.read_text(encoding="utf-8"), encoding="utf-8")
    (export.parent / "editorial.json").write_text(
        json.dumps(
            {"pins": {"demo-006": ["demo-090"]}, "blocks": {"sections": ["Sport"], "pairs": [["demo-001", "demo-002"]]}}
        )
    )
    report = build_index([export], Settings(index_dir=tmp_path / "idx"), embedder=embedder, progress=False)
    assert report.editorial_file == str(export.parent / "editorial.json")
    editorial = Recommender.open(tmp_path / "idx").editorial
    assert editorial == Editorial(
        pins={"demo-006": ("demo-090",)},
        blocked_sections=frozenset({"sport"}),
        blocked_pairs=frozenset({("demo-001", "demo-002")}),
    )
    (export.parent / "editorial.json").write_text(json.dumps({"pins": {"demo-006": "demo-090"}}))
    from recommender.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError, match=r"editorial.json: pins.demo-006: expected a list of non-empty article ids"
    ):
        build_index([export], Settings(index_dir=tmp_path / "idx"), embedder=embedder, progress=False)


# -- expiry --------------------------------------------------------------------------------------------------
def test_expired_articles_are_no_longer_recommended(client: TestClient) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {
        "title": "Tessera probe sends first images from comet Okafor-Lind orbit",
        "body": "Comet images.",
        "section": "science",
    }
    assert (
        client.put("/v1/articles/expired", json={**body, "expires_at": past}, headers=admin_headers()).status_code
        == 201
    )
    assert (
        client.put("/v1/articles/later", json={**body, "expires_at": future}, headers=admin_headers()).status_code
        == 201
    )
    related = _ids(client.get("/v1/articles/demo-041/related", params={"k": 50}))
    assert "later" in related and "expired" not in related
    assert client.get("/v1/articles/expired/related").status_code == 200  # still readable, still has its box
    assert client.get("/v1/articles/expired").json()["id"] == "expired"
