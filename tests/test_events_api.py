"""The HTTP side of issue 15 in process: request_id and variant on related responses (and what they do to caching),
POST /v1/events with every refusal in the stable error shape, rate limits, metrics."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.events.read import load_events
from recommender.settings import Settings
from service import create_app
from tests.support.server import copy_index
from tests.test_service_api import _ReadyClient

RELATED = "/v1/articles/{}/related"


@pytest.fixture
def index_dir(demo_index: Path, tmp_path: Path) -> Path:
    return copy_index(demo_index, tmp_path / "index")


@pytest.fixture
def diverse(tmp_path: Path) -> Path:
    path = tmp_path / "diverse.json"
    path.write_text(json.dumps({"diversity": 0.9}))
    return path


def _client(index_dir: Path, embedder, **settings) -> TestClient:
    defaults = {"poll_interval": 0, "events_compact_interval": 0}
    return _ReadyClient(create_app(Settings(index_dir=index_dir, **{**defaults, **settings}), embedder=embedder))


@pytest.fixture
def client(index_dir: Path, embedder, diverse: Path):
    variants = {"control": {"share": 0.5}, "diverse": {"share": 0.5, "config": str(diverse)}}
    with _client(index_dir, embedder, variants=variants) as c:
        yield c


def _visitors(client: TestClient) -> dict[str, str]:
    """One visitor id per variant."""
    experiment = client.app.state.live.experiment
    found: dict[str, str] = {}
    n = 0
    while len(found) < 2:
        found.setdefault(experiment.assign(f"reader-{n}"), f"reader-{n}")
        n += 1
    return found


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body["error"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _events_for(payload: dict, visitor: str, click: int | None = None) -> list[dict]:
    base = {"source_id": payload["article_id"], "request_id": payload["request_id"], "variant": payload["variant"],
            "visitor": visitor, "at": _now()}  # fmt: skip
    events = [
        {"type": "impression", "item_id": i["id"], "position": n, **base} for n, i in enumerate(payload["items"], 1)
    ]
    if click is not None:
        events.append({"type": "click", "item_id": payload["items"][click - 1]["id"], "position": click, **base})
    return events


# -- request_id, variant and caching ------------------------------------------------------------
def test_related_names_the_list_and_the_variant(client: TestClient) -> None:
    visitors = _visitors(client)
    control = client.get(RELATED.format("demo-006"), params={"visitor": visitors["control"]}).json()
    treated = client.get(RELATED.format("demo-006"), params={"visitor": visitors["diverse"]}).json()
    assert (control["variant"], treated["variant"]) == ("control", "diverse")
    assert len(control["request_id"]) == 24 and control["request_id"] != treated["request_id"]
    assert [i["id"] for i in control["items"]] != [i["id"] for i in treated["items"]]  # the variant's own ranking
    anonymous = client.get(RELATED.format("demo-006")).json()
    assert anonymous["variant"] == "control" and anonymous["request_id"] == control["request_id"]  # the same list
    assert client.get(RELATED.format("demo-006"), params={"visitor": ""}).json()["variant"] == "control"
    draft = client.post(
        "/v1/related", params={"visitor": visitors["diverse"]}, json={"title": "Ceasefire talks in Lisgard"}
    )
    assert draft.status_code == 200 and draft.json()["variant"] == "diverse" and len(draft.json()["request_id"]) == 24


def test_visitors_of_a_variant_share_one_cache_entry_and_etag(client: TestClient) -> None:
    live = client.app.state.live
    experiment = live.experiment
    readers = [f"r{n}" for n in range(40) if experiment.assign(f"r{n}") == "control"][:10]
    answers = [client.get(RELATED.format("demo-010"), params={"visitor": v, "k": 4}) for v in readers]
    assert len({a.content for a in answers}) == 1 and len({a.headers["etag"] for a in answers}) == 1
    # one computed payload and one byte entry for the fast path, whatever the number of visitors
    assert len(live.cache) == 2 and live.cache.misses == 1
    other = client.get(RELATED.format("demo-010"), params={"visitor": _visitors(client)["diverse"], "k": 4})
    assert other.headers["etag"] != answers[0].headers["etag"]
    # a conditional request of another visitor of the same variant: 304 from the fast path
    again = client.get(RELATED.format("demo-010"), params={"k": 4, "visitor": readers[-1]},
                       headers={"If-None-Match": answers[0].headers["etag"]})  # fmt: skip
    assert again.status_code == 304


@pytest.mark.parametrize("visitor", ["has space", "é", "v" * 129, "tab\there"])
def test_a_bad_visitor_id_is_a_422_naming_it(client: TestClient, visitor: str) -> None:
    error = _error(client.get(RELATED.format("demo-006"), params={"visitor": visitor}), 422, "invalid_request")
    assert error["message"] == "visitor: must be 1 to 128 printable ASCII characters without spaces"
    assert error["fields"] == ["query.visitor"]


# -- POST /v1/events ----------------------------------------------------------------------------
def test_events_are_stored_from_json_and_from_a_beacon(client: TestClient, index_dir: Path) -> None:
    visitor = _visitors(client)["diverse"]
    payload = client.get(RELATED.format("demo-006"), params={"visitor": visitor, "min_relevance": 0}).json()
    events = _events_for(payload, visitor, click=2)
    first = client.post("/v1/events", json={"events": events[:4]})
    assert first.status_code == 200 and first.json() == {"accepted": 4, "duplicates": 0}
    assert first.headers["cache-control"] == "no-store"
    beacon = client.post(
        "/v1/events", content=json.dumps({"events": events[4:]}), headers={"content-type": "text/plain;charset=UTF-8"}
    )
    assert beacon.json() == {"accepted": 3, "duplicates": 0}
    resent = client.post("/v1/events", content=json.dumps({"events": events}), headers={"content-type": "text/plain"})
    assert resent.json() == {"accepted": 0, "duplicates": 7}
    table, _ = load_events(index_dir / "events")
    assert table.num_rows == 7
    assert set(table.column("request_id").to_pylist()) == {payload["request_id"]}
    assert set(table.column("variant").to_pylist()) == {"diverse"}


@pytest.mark.parametrize(
    "body, message, field",
    [
        ({"events": [{"position": 0}]}, "events[0].type: Field required (nothing was stored)", "body.events[0].type"),
        ("not json", "body: not valid JSON (expected ident at line 1 column 2) (nothing was stored)", "body"),
        ([1, 2], 'body: expected a JSON object {"events": [...]} (nothing was stored)', "body"),
        (
            {"events": []},
            "events: List should have at least 1 item after validation, not 0 (nothing was stored)",
            "body.events",
        ),
    ],
)
def test_bad_batches_are_422_and_store_nothing(
    client: TestClient, index_dir: Path, body, message: str, field: str
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    error = _error(
        client.post("/v1/events", content=content, headers={"content-type": "application/json"}), 422, "invalid_request"
    )
    assert (error["message"], error["fields"]) == (message, [field])
    assert not (index_dir / "events").exists()


def test_a_bad_event_names_its_index_and_nothing_of_the_batch_is_stored(client: TestClient, index_dir: Path) -> None:
    visitor = _visitors(client)["control"]
    payload = client.get(RELATED.format("demo-006"), params={"visitor": visitor, "min_relevance": 0}).json()
    events = _events_for(payload, visitor)
    events[3]["position"] = 51
    events[4]["at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    error = _error(client.post("/v1/events", json={"events": events}), 422, "invalid_request")
    assert error["message"] == (
        "events[3].position: Input should be less than or equal to 50 (2 of 6 events invalid; nothing was stored)"
    )
    assert error["fields"] == ["body.events[3].position"]
    assert not (index_dir / "events").exists()
    too_many = [events[0]] * 101
    error = _error(client.post("/v1/events", json={"events": too_many}), 422, "invalid_request")
    assert error["message"] == "events: at most 100 events per batch, got 101 (nothing was stored)"


def test_other_content_types_are_415(client: TestClient) -> None:
    error = _error(
        client.post("/v1/events", content=b"<events/>", headers={"content-type": "application/xml"}),
        415,
        "unsupported_media_type",
    )
    assert error["message"] == "body: expected Content-Type application/json or text/plain, got application/xml"


def test_a_client_over_its_rate_gets_429_with_retry_after(index_dir: Path, embedder) -> None:
    with _client(index_dir, embedder, events_rate=1, events_burst=10) as client:
        payload = client.get(RELATED.format("demo-006"), params={"min_relevance": 0}).json()
        events = _events_for(payload, "v1")  # 6 events
        assert client.post("/v1/events", json={"events": events}).status_code == 200
        refused = client.post("/v1/events", json={"events": _events_for(payload, "v2")})
        error = _error(refused, 429, "rate_limited")
        assert error["message"] == (
            "too many events from this client (at most 1 per second, bursts of 10); nothing was stored: send again in 2 s"
        )
        assert refused.headers["retry-after"] == "2"
        assert load_events(index_dir / "events")[0].num_rows == 6
        metrics = client.get("/metrics").text
        assert "recommender_events_rate_limited_batches_total 1.0" in metrics
        assert "recommender_events_accepted_total 6.0" in metrics


def test_a_body_over_the_limit_is_413(index_dir: Path, embedder) -> None:
    with _client(index_dir, embedder, max_body_bytes=2048) as client:
        body = json.dumps({"events": [{"type": "impression", "visitor": "x" * 100}] * 30})
        _error(client.post("/v1/events", content=body, headers={"content-type": "text/plain"}), 413, "body_too_large")


def test_storage_failure_is_a_503_and_nothing_is_acknowledged(index_dir: Path, embedder, tmp_path: Path) -> None:
    with _client(index_dir, embedder, events_dir=tmp_path / "no" / "such" / "events") as client:
        payload = client.get(RELATED.format("demo-006")).json()
        error = _error(client.post("/v1/events", json={"events": _events_for(payload, "v1")}), 503, "write_failed")
        assert "the events were not stored" in error["message"]


def test_a_changed_variant_configuration_changes_the_etag_and_request_id(
    index_dir: Path, embedder, tmp_path: Path
) -> None:
    """ETags hold across restarts; a variant whose ranking file changed serves other lists, so its tags change."""
    config = tmp_path / "b.json"
    answers = []
    for diversity in (0.2, 0.2, 0.8):
        config.write_text(json.dumps({"diversity": diversity}))
        variants = {"b": {"share": 1.0, "config": str(config)}}
        with _client(index_dir, embedder, variants=variants) as client:
            answers.append(client.get(RELATED.format("demo-006")))
    assert answers[0].headers["etag"] == answers[1].headers["etag"]
    assert answers[0].json()["request_id"] == answers[1].json()["request_id"]
    assert answers[2].headers["etag"] != answers[0].headers["etag"]
    assert answers[2].json()["request_id"] != answers[0].json()["request_id"]


def test_the_service_compacts_closed_days_in_the_background(index_dir: Path, embedder) -> None:
    from recommender.events.log import EventLog
    from recommender.events.schema import Limits, parse_batch

    received = datetime.now(UTC) - timedelta(days=2)
    log = EventLog(index_dir / "events", clock=received.timestamp)
    payload = {
        "source_id": "demo-006",
        "request_id": "r1",
        "variant": "control",
        "visitor": "v",
        "at": received.isoformat(),
    }
    events = [{"type": "impression", "item_id": f"demo-00{n}", "position": n, **payload} for n in range(1, 7)]
    log.append(parse_batch({"events": events}, Limits(now=received.timestamp())))
    log.close()
    with _client(index_dir, embedder, events_compact_interval=0.1) as client:
        compactor = client.app.state.compactor
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while compactor.last is None and datetime.now(UTC) < deadline:
            time.sleep(0.05)
        assert compactor.last is not None and compactor.last.written == 6
    assert len(list((index_dir / "events").glob("date=*/part-*.parquet"))) == 1
    assert not list((index_dir / "events" / "_log").glob("received=*"))
