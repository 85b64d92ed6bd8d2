"""Faults and hostile input against real processes: damaged versions, a vanished index directory, a full disk under
live writes, kill -9 during concurrent write bursts, a short soak, and every API route fed hostile input.

The long versions are scripts: tests/chaos/kill_builds.py, tests/chaos/kill_service.py, tests/chaos/soak.py
(docs/reliability.md has the commands and the numbers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from index import IndexDirectory, atomic_write_bytes
from tests.chaos import kill_builds, kill_service, soak
from tests.support.server import admin_headers, copy_index, publish_copy, wait_until


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


def _ready(client: httpx.Client) -> dict:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    return r.json()


# -- damaged versions -----------------------------------------------------------------------------
def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "flip":  # same size: only the content digest can tell
        for i in range(len(data) // 3, len(data) // 3 + 16):
            data[i] ^= 0x5A
    elif how == "garbage":
        data = bytearray(b"\x00\xff not what was written \xfe" * 4)
    path.write_bytes(bytes(data))


def _publish_damaged(root: Path, good: str, file: str, how: str) -> str:
    """A version that was fine when built and then damaged on disk, made current (CURRENT rewritten directly:
    ``set_current`` itself would refuse a truncated file)."""
    directory = IndexDirectory(root)
    name = directory.new_version_name()
    shutil.copytree(directory.version_path(good), directory.version_path(name))
    _damage(directory.version_path(name) / file, how)
    atomic_write_bytes(root / "CURRENT", (name + "\n").encode())
    return name


def _publish_good(root: Path, good: str) -> str:
    directory = IndexDirectory(root)
    name = directory.new_version_name()
    shutil.copytree(directory.version_path(good), directory.version_path(name))
    directory.set_current(name)
    return name


DAMAGE = [
    ("vectors.npy", "flip", "digest"),
    ("vectors.faiss", "truncate", "bytes, manifest says"),
    ("articles.jsonl", "flip", "digest"),
    ("lexical_data.npy", "garbage", "manifest says"),
    ("signatures.npy", "flip", "digest"),
    ("manifest.json", "truncate", "manifest unreadable"),
    ("manifest.json", "garbage", "manifest unreadable"),
]


def test_damaged_published_version_keeps_the_old_one_serving_and_says_why(
    servers, demo_index: Path, tmp_path: Path
) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0.1)
    good = IndexDirectory(root).current()
    served = good
    with server.client() as c:
        for file, how, reason in DAMAGE:
            bad = _publish_damaged(root, good, file, how)
            wait_until(lambda: _ready(c)["load_error"], 10, 0.05, f"the poller to try {bad}")
            ready = _ready(c)
            assert ready["version"] == served and ready["published_version"] == bad
            assert bad in ready["load_error"] and file in ready["load_error"] and reason in ready["load_error"], ready
            assert c.get("/v1/index").json()["load_error"] == ready["load_error"]
            assert "recommender_index_load_failed 1.0" in c.get("/metrics").text
            related = c.get("/v1/articles/demo-006/related")
            assert related.status_code == 200 and related.json()["index_version"] == served
            message = _error(c.post("/v1/admin/reload", headers=admin_headers()), 503, "reload_failed")
            assert bad in message and file in message
            # a good build published after the bad one is picked up by the poller, and the error clears
            fixed = _publish_good(root, good)
            t0 = time.monotonic()
            wait_until(lambda fixed=fixed: _ready(c)["version"] == fixed, 10, 0.02, f"recovery to {fixed}")
            assert time.monotonic() - t0 < 5.0
            assert _ready(c)["load_error"] is None and "recommender_index_load_failed 0.0" in c.get("/metrics").text
            served = fixed


# -- the index directory removed ----------------------------------------------------------------
def test_index_directory_removed_under_a_running_service(servers, demo_index: Path, tmp_path: Path) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0.1)
    aside = tmp_path / "aside"
    with server.client(headers=admin_headers()) as c:
        assert c.put("/v1/articles/live/1", json={"title": "Harbour strike enters its third day"}).status_code == 201
        version = _ready(c)["version"]
        shutil.move(root, aside)
        wait_until(lambda: _ready(c)["load_error"], 10, 0.05, "the missing directory to be reported")
        ready = _ready(c)
        assert ready["version"] == version and ready["published_version"] is None
        assert "index directory is missing" in ready["load_error"] and "from memory" in ready["load_error"]
        # reads keep working from memory, live articles included
        assert c.get("/v1/articles/demo-006/related").status_code == 200
        assert c.get("/v1/articles/live/1/related").status_code == 200
        # writes cannot be made durable: refused with the reason, and nothing recreated
        assert "is missing" in _error(c.put("/v1/articles/live/2", json={"title": "x"}), 503, "write_failed")
        _error(c.delete("/v1/articles/demo-001"), 503, "write_failed")
        _error(c.post("/v1/admin/reload"), 503, "reload_failed")
        assert not root.exists()
        # the directory comes back: the error clears and writes work again
        shutil.move(aside, root)
        t0 = time.monotonic()
        wait_until(lambda: _ready(c)["load_error"] is None, 10, 0.02, "recovery")
        assert time.monotonic() - t0 < 5.0
        assert c.put("/v1/articles/live/2", json={"title": "Talks resume"}).status_code == 201
        assert c.get("/v1/articles/demo-001").status_code == 200
        # removed again, then a fresh directory with a new published version appears: the service switches to it
        shutil.rmtree(root)
        wait_until(lambda: _ready(c)["load_error"], 10, 0.05, "the missing directory to be reported")
        copy_index(demo_index, root)
        fresh = publish_copy(root)
        wait_until(lambda: _ready(c)["version"] == fresh and not _ready(c)["load_error"], 10, 0.05, "the new version")


# -- a full disk under live writes --------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("mounting a small tmpfs needs root (run as root to test a full disk)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> None:
    for name, block in (("filler", 65536), ("filler-small", 512)):  # then the last few kilobytes
        with open(mount / name, "ab", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * block)
            except OSError:
                pass


def _wal_is_whole(root: Path) -> None:
    data = (root / "live" / "wal.jsonl").read_bytes()
    assert data.endswith(b"\n"), "the log ends in a half-written entry"
    seqs = [json.loads(line)["seq"] for line in data.splitlines()]
    assert seqs == sorted(set(seqs))


def test_disk_full_during_live_writes(servers, demo_index: Path, small_disk: Path) -> None:
    root = copy_index(demo_index, small_disk / "index")
    server = servers(root, poll_interval=0.2)
    acked: dict[str, str | None] = {}
    refused: list[str] = []
    with server.client(headers=admin_headers()) as c:
        for n in range(3):
            assert c.put(f"/v1/articles/before/{n}", json={"title": f"Before the disk filled {n}"}).status_code == 201
            acked[f"before/{n}"] = f"Before the disk filled {n}"
        _fill(small_disk)
        big = {"title": "Long read", "body": "The harbour strike, explained. " * 5000}
        message = _error(c.put("/v1/articles/big", json=big), 507, "insufficient_storage")
        assert "no space left" in message and "not made" in message
        refused.append("big")
        # small writes fit in the log's last page for a while; keep writing until the disk refuses one
        for n in range(200):
            r = c.put(f"/v1/articles/small/{n}", json={"title": f"Small write {n}"})
            if r.status_code == 507:
                refused.append(f"small/{n}")
                break
            assert r.status_code == 201, r.text
            acked[f"small/{n}"] = f"Small write {n}"
        else:
            pytest.fail("the disk never filled up")
        for n in range(1, 60):  # a delete is a short entry: it may still fit where a PUT did not
            r = c.delete(f"/v1/articles/demo-{n:03d}")
            if r.status_code != 204:
                _error(r, 507, "insufficient_storage")
                kept = f"demo-{n:03d}"
                break
            acked[f"demo-{n:03d}"] = None
        else:
            pytest.fail("deletes never hit the full disk")
        _wal_is_whole(root)
        # reads are unaffected, refused writes were not applied
        assert c.get("/v1/articles/demo-100/related").status_code == 200
        assert all(c.get(f"/v1/articles/{i}").status_code == 404 for i in refused)
        assert c.get(f"/v1/articles/{kept}").status_code == 200
        # space comes back: writes work again
        (small_disk / "filler").unlink()
        assert c.delete(f"/v1/articles/{kept}").status_code == 204
        acked[kept] = None
    server.kill9()
    with servers(root, poll_interval=0.2).client() as c:
        assert _ready(c)["version"]
        for article_id, title in acked.items():
            r = c.get(f"/v1/articles/{article_id}")
            assert (r.status_code == 404) if title is None else (r.json()["title"] == title), article_id
        assert all(c.get(f"/v1/articles/{i}").status_code == 404 for i in refused)
    _wal_is_whole(root)


def test_half_written_log_entry_is_cut_before_the_next_append(demo_index: Path, tmp_path: Path, embedder) -> None:
    """A process killed inside write() leaves a torn last line; the next append must not glue onto it."""
    from recommender.article import parse_article
    from recommender.changelog import ChangeLog
    from recommender.serving import LiveIndex
    from recommender.settings import Settings

    root = copy_index(demo_index, tmp_path / "index")
    wal = ChangeLog(root)
    wal.append_upsert(parse_article({"id": "a", "title": "acknowledged before the crash"}))
    with open(wal.path, "ab") as fh:
        fh.write(b'{"seq": 2, "op": "upsert", "id": "torn", "article": {"id": "torn", "ti')
    fresh = ChangeLog(root)  # a restarted process
    fresh.append_upsert(parse_article({"id": "b", "title": "acknowledged after the restart"}))
    _wal_is_whole(root)
    live = LiveIndex(Settings(index_dir=root, poll_interval=0), embedder=embedder)
    live.load()
    assert "a" in live.snapshot.recommender and "b" in live.snapshot.recommender
    assert "torn" not in live.snapshot.recommender


# -- kill -9 during write bursts, a short soak, kill -9 during builds ---------------------------------
def test_kill_9_during_concurrent_write_bursts(demo_index: Path, tmp_path: Path) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    summary = kill_service.run(root, rounds=2, writers=4, burst=(0.3, 1.0), seed=7, build=False, log_dir=tmp_path)
    assert summary["problems"] == [] and summary["lost"] == 0
    assert summary["acknowledged"] >= 2


def test_short_soak_mixed_traffic_with_reloads(demo_index: Path, tmp_path: Path) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    args = soak.parser().parse_args(
        ["--minutes", "0.25", "--clients", "2", "--reload-every", "3", "--publish-every", "5", "--build-every", "0",
         "--poll-interval", "0.5", "--warmup", "5", "--max-growth-mb", "1000"]
    )  # fmt: skip
    summary = soak.run(root, args, export=None, log_path=tmp_path / "soak.log", echo=lambda *_: None)
    assert summary["failure_samples"] == [] and summary["failures"] == 0
    assert summary["requests"] > 100 and summary["admin_reloads"] >= 3 and summary["versions_published"] >= 2
    assert {"related_id", "related_text", "put"} <= set(summary["by_op"])


@pytest.mark.slow
def test_kill_builds_script(tmp_path: Path) -> None:
    summary = kill_builds.run(runs=3, articles=20, seed=3, work=tmp_path, echo=lambda *_: None)
    assert summary["problems"] == [] and summary["servable_after_each"] == 3 and summary["final_build_ok"]
