"""A restart is cheap and a slow client cannot starve the probes (issue 16, findings 1 and 9), on real processes."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from recommender.article import parse_article
from recommender.changelog import ChangeLog
from tests.support.server import ServerProcess, admin_headers, copy_index, wait_until


def test_healthz_answers_while_the_index_loads(demo_index: Path, tmp_path: Path) -> None:
    """A log written by a release that kept no vectors makes the load embed (seconds): meanwhile the process
    answers /healthz, and /readyz says it is loading (before, neither answered until the load ended)."""
    root = copy_index(demo_index, tmp_path / "index")
    log = ChangeLog(root)
    for n in range(80):
        log.append_upsert(
            parse_article(
                {"id": f"old/{n}", "title": f"Harbour strike day {n}", "body": "Dock workers walked out. " * 40}
            )
        )
    server = ServerProcess(root, tmp_path / "server.log", poll_interval=0)
    started = time.monotonic()
    server.start(timeout=60, ready=False)  # returns at the first /healthz 200
    healthy_after = time.monotonic() - started
    with server.client() as c:
        first = c.get("/readyz")
        wait_until(lambda: c.get("/readyz").status_code == 200, 120, 0.1, "readiness")
        ready_after = time.monotonic() - started
        assert c.get("/v1/index").json()["pending_changes"] == 80
    server.stop()
    assert first.status_code == 503 and "loading" in first.json()["error"]["message"], first.text
    assert healthy_after < ready_after


def test_a_restart_after_kill_9_replays_without_embedding(demo_index: Path, tmp_path: Path, servers) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0)
    with server.client(headers=admin_headers()) as c:
        for n in range(30):
            assert (
                c.put(
                    f"/v1/articles/live/{n}", json={"title": f"Harbour strike update {n}", "body": "Dock workers."}
                ).status_code
                == 201
            )
    server.kill9()
    restarted = servers(root, poll_interval=0)
    with restarted.client() as c:
        wait_until(lambda: c.get("/readyz").status_code == 200, 60, 0.05, "readiness")
        info = c.get("/v1/index").json()
        assert info["pending_changes"] == 30
        assert info["last_load"]["replayed"] == 30 and info["last_load"]["embedded"] == 0  # no model call
        assert c.get("/v1/articles/live/29/related").status_code == 200


def _slow_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # headers never finished
    return sock


def test_a_slow_header_flood_neither_starves_healthz_nor_holds_connections(
    demo_index: Path, tmp_path: Path, servers
) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0, header_timeout=2)
    slow = [_slow_client(server.port) for _ in range(400)]
    try:
        latencies = []
        with httpx.Client(base_url=server.url, timeout=5) as c:
            for _ in range(20):
                t0 = time.perf_counter()
                assert c.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - t0)
        assert sorted(latencies)[-2] < 0.5, latencies
        # The server hangs up on every connection that did not finish its headers in time.
        time.sleep(3)
        closed = 0
        for sock in slow:
            sock.settimeout(2)
            try:
                closed += sock.recv(1) == b""
            except (ConnectionResetError, TimeoutError, OSError):
                closed += 1
        assert closed == len(slow)
    finally:
        for sock in slow:
            sock.close()


def test_acknowledged_editorial_changes_survive_kill_9(demo_index: Path, tmp_path: Path, servers) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0)
    with server.client(headers=admin_headers()) as c:
        assert c.put("/v1/editorial/pins/demo-006", json={"ids": ["demo-050", "demo-100"]}).status_code == 200
        assert c.put("/v1/editorial/blocks/sections/Sport").status_code == 200
        assert c.put("/v1/editorial/blocks/pairs", params={"a": "demo-001", "b": "demo-002"}).status_code == 200
        assert c.put("/v1/editorial/blocks/articles/demo-003").status_code == 200
        assert c.delete("/v1/editorial/blocks/articles/demo-003").status_code == 200
        before = c.get("/v1/editorial").json()
    server.kill9()
    restarted = servers(root, poll_interval=0)
    with restarted.client(headers=admin_headers()) as c:
        wait_until(lambda: c.get("/readyz").status_code == 200, 60, 0.05, "readiness")
        assert c.get("/v1/editorial").json() == before
        box = c.get("/v1/articles/demo-006/related").json()["items"]
        assert [i["id"] for i in box[:1]] == ["demo-050"]  # demo-100 is sport: blocked, and blocks win over pins
        assert "demo-100" not in [i["id"] for i in box]
