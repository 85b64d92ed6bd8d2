"""A real uvicorn server in a subprocess (loopback only): readiness, durability across kill -9, reload under load."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from service_fixtures import ServerProcess, admin_headers, copy_index, publish_copy, wait_until

from index import IndexDirectory


@pytest.fixture
def servers(tmp_path: Path):
    started: list[ServerProcess] = []

    def start(index_dir: Path, **settings) -> ServerProcess:
        server = ServerProcess(index_dir, tmp_path / f"server-{len(started)}.log", **settings)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def _publish_into(demo_index: Path, root: Path) -> str:
    """Publish like a build does: the version folder first, then the CURRENT pointer."""
    source = IndexDirectory(demo_index)
    name = source.current()
    shutil.copytree(source.version_path(name), IndexDirectory(root).version_path(name))
    IndexDirectory(root).set_current(name)
    return name


def test_readiness_before_and_after_an_index_exists(servers, demo_index: Path, tmp_path: Path) -> None:
    root = tmp_path / "index"
    server = servers(root, poll_interval=0.2)
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        assert c.get("/v1/articles/demo-001/related").status_code == 503
        name = _publish_into(demo_index, root)
        wait_until(lambda: c.get("/readyz").status_code == 200, 20, 0.1, "readiness after publish")
        assert c.get("/readyz").json()["version"] == name
        assert c.get("/v1/articles/demo-001/related").status_code == 200


def test_put_and_delete_survive_kill_9(servers, demo_index: Path, tmp_path: Path) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0)
    article = {
        "title": "Tessera probe lands a small lander on comet Okafor-Lind",
        "body": "The Tessera mission put a lander on the comet's larger lobe.",
        "section": "science",
        "published_at": "2026-08-30T12:00:00Z",
    }
    with server.client() as c:
        put = c.put("/v1/articles/live/lander", json=article, headers=admin_headers())
        assert put.status_code == 201, put.text
        acknowledged = time.monotonic()
        # recommendable right away (well within a second of the acknowledgement), with its own list
        assert c.get("/v1/articles/live/lander/related").status_code == 200
        assert time.monotonic() - acknowledged < 1.0
        assert c.delete("/v1/articles/demo-001", headers=admin_headers()).status_code == 204
        etag = c.get("/v1/articles/live/lander/related").headers["etag"]
    server.kill9()

    restarted = servers(root, poll_interval=0)
    with restarted.client() as c:
        assert c.get("/readyz").status_code == 200
        related = c.get("/v1/articles/live/lander/related")
        assert related.status_code == 200 and related.headers["etag"] == etag
        assert c.get("/v1/articles/live/lander").json()["title"] == article["title"]
        assert c.get("/v1/articles/demo-001/related").status_code == 404
        for source in ("demo-002", "demo-010", "demo-050"):
            ids = [i["id"] for i in c.get(f"/v1/articles/{source}/related", params={"k": 50}).json()["items"]]
            assert "demo-001" not in ids
        assert c.get("/v1/index").json()["pending_changes"] == 2


def test_reload_under_concurrent_load_drops_no_request(servers, demo_index: Path, tmp_path: Path) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0.3)
    failures: list[str] = []
    versions: Counter[str] = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def load(worker: int) -> None:
        with server.client() as c:
            i = worker
            while not stop.is_set():
                source = f"demo-{i % 140 + 1:03d}"
                try:
                    r = c.get(f"/v1/articles/{source}/related", params={"k": 3 + i % 5})
                    if r.status_code != 200:
                        failures.append(f"{source}: {r.status_code} {r.text[:200]}")
                    else:
                        with lock:
                            versions[r.json()["index_version"]] += 1
                except httpx.HTTPError as exc:
                    failures.append(f"{source}: {exc!r}")
                i += 4

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        with server.client() as admin:
            first = publish_copy(root)
            r = admin.post("/v1/admin/reload", headers=admin_headers())
            assert r.status_code == 200 and r.json()["version"] == first
            time.sleep(0.5)
            second = publish_copy(root)  # picked up by the poller this time
            wait_until(lambda: admin.get("/v1/index").json()["version"] == second, 20, 0.1, "the poller's reload")
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert failures == []
    assert versions[first] > 0 and versions[second] > 0
    assert sum(versions.values()) > 50
