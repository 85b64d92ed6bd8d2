"""A real uvicorn server in a subprocess (loopback only): readiness, durability across kill -9, reload under load."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from index import IndexDirectory
from tests.support.paths import REPO
from tests.support.server import admin_headers, copy_index, publish_copy, wait_until


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


def test_model_loads_in_the_background_at_startup(servers, demo_index: Path, tmp_path: Path) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0)
    loaded = "service.app: model all-MiniLM-L6-v2 loaded in"
    with server.client() as c:
        # up and ready at once: neither waits for the model (it takes seconds more)
        assert c.get("/readyz").status_code == 200
        assert loaded not in server.log_path.read_text()
        wait_until(lambda: loaded in server.log_path.read_text(), 60, 0.1, "the model preload")
        started = time.monotonic()
        draft = {"title": "Tessera probe reaches comet Okafor-Lind", "body": "Mission scientists cheered.", "k": 3}
        r = c.post("/v1/related", json=draft)
        elapsed = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert any("Okafor-Lind" in item["title"] for item in r.json()["items"])
        assert elapsed < 3.0, f"first draft request took {elapsed:.1f}s"


def test_a_pushed_article_joins_the_related_list_at_once(servers, demo_index: Path, tmp_path: Path) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0)
    related = "/v1/articles/demo-002/related"
    article = {
        "title": "Tessera probe completes engine burn on final approach to comet Okafor-Lind",
        "summary": "An engine burn by the Tessera spacecraft sets up its rendezvous with comet Okafor-Lind.",
        "body": "Controllers of the Continental Space Agency in Halden said Tessera's engines fired for fourteen "
        "minutes, leaving the probe two million kilometres from comet Okafor-Lind ahead of the August "
        "rendezvous. The Pebble lander is due to be released in October, said Dr. Ruth Okafor.",
        "section": "science",
        "tags": ["space", "comet", "tessera"],
        "published_at": "2026-08-01T12:00:00Z",
    }

    def ids(c: httpx.Client) -> list[str]:
        r = c.get(related)
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    with server.client() as c:
        assert "live/tessera-burn" not in ids(c)  # also puts the list in the response cache
        assert c.put("/v1/articles/live/tessera-burn", json=article, headers=admin_headers()).status_code == 201
        acknowledged = time.monotonic()
        wait_until(lambda: "live/tessera-burn" in ids(c), 1.0, 0.02, "the pushed article in demo-002's list")
        assert time.monotonic() - acknowledged < 1.0
        assert c.delete("/v1/articles/live/tessera-burn", headers=admin_headers()).status_code == 204
        assert "live/tessera-burn" not in ids(c)
        assert "live/tessera-burn" not in [i["id"] for i in c.get(related, params={"k": 50}).json()["items"]]


@pytest.mark.parametrize("command", [["-m", "service"], ["-m", "recommender", "serve"]])
def test_port_in_use_is_one_clear_error(servers, demo_index: Path, tmp_path: Path, command: list[str]) -> None:
    server = servers(copy_index(demo_index, tmp_path / "index"), poll_interval=0)
    second = subprocess.run(
        [sys.executable, *command],
        cwd=REPO,
        env=server.env,  # the same RECOMMENDER_HOST and RECOMMENDER_PORT
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    expected = f"error: cannot listen on 127.0.0.1:{server.port}: address already in use"
    assert second.returncode == 2, second.stderr
    assert second.stderr.splitlines()[-1] == expected
    if command == ["-m", "service"]:
        assert second.stderr == expected + "\n" and second.stdout == ""
    else:  # the CLI may announce what it serves first; then the same single error, no server log
        assert len(second.stderr.splitlines()) <= 2 and "Uvicorn" not in second.stderr
        assert "Started server process" not in second.stderr and "Traceback" not in second.stderr
    with server.client() as c:
        assert c.get("/healthz").status_code == 200  # the first server is untouched


def test_sigint_stops_within_a_second_and_finishes_requests_in_flight(
    servers, demo_index: Path, tmp_path: Path
) -> None:
    import signal
    import threading

    server = servers(copy_index(demo_index, tmp_path / "index"), poll_interval=0)
    with server.client() as c:
        wait_until(lambda: c.get("/readyz").status_code == 200, 60, 0.05, "readiness")
        wait_until(lambda: c.get("/readyz").json()["model_state"] == "ready", 120, 0.1, "the model")
    answers: list[int] = []
    clients = [httpx.Client(base_url=server.url, timeout=10) for _ in range(8)]
    for client in clients:  # connections open before the burst: the drafts are in flight when the signal comes
        assert client.get("/healthz").status_code == 200

    def ask(client: httpx.Client, n: int) -> None:
        try:
            answers.append(client.post("/v1/related", json={"title": f"Harbour strike talks {n}"}).status_code)
        except httpx.HTTPError:
            answers.append(-1)

    threads = [threading.Thread(target=ask, args=(client, n)) for n, client in enumerate(clients)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGINT)
    server.proc.wait(timeout=10)
    stopped = time.monotonic() - started
    for t in threads:
        t.join(timeout=10)
    for client in clients:
        client.close()
    assert server.proc.returncode == 0 and stopped < 1.0, stopped
    # every request the server had accepted was answered; ones that arrived after it stopped listening failed to
    # connect (-1), never with a reset half-way or a 5xx
    assert answers and all(code in (200, -1) for code in answers) and 200 in answers, answers
