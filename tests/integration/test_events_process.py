"""Events against a real server process: no acknowledged event lost across kill -9, each stored once after a
restart and a compaction by the CLI; simulated readers over HTTP, and the evaluation finds the ranking difference."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from recommender.evaluation.online_report import run_online_evaluation
from recommender.events.read import load_events
from recommender.events.schema import Limits, key_of, parse_batch
from recommender.events.simulate import HttpTransport, ReaderModel, load_stories, simulate
from tests.support.paths import DEMO_CORPUS, REPO, subprocess_env
from tests.support.server import copy_index


def _batch(writer: int, n: int, size: int = 20) -> list[dict]:
    at = datetime.now(UTC).isoformat()
    return [
        {
            "type": "impression" if i % 5 else "click",
            "source_id": "demo-006",
            "item_id": f"demo-{1 + i % 50:03d}",
            "position": 1 + i % 6,
            "request_id": f"w{writer}n{n}",
            "variant": "control",
            "visitor": f"kill-{writer}",
            "at": at,
        }
        for i in range(size)
    ]


def _keys(events: list[dict]) -> set[int]:
    return {key_of(e) for e in parse_batch({"events": events}, Limits(max_events=10_000))}


def test_acknowledged_events_survive_kill_9(servers, demo_index: Path, tmp_path: Path) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    server = servers(root, poll_interval=0, events_rate=0, events_compact_interval=0)
    acknowledged: set[int] = set()
    acked_batches: list[list[dict]] = []
    in_flight: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def writer(number: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            n = 0
            while not stop.is_set():
                events = _batch(number, n)
                keys = _keys(events)
                with lock:
                    in_flight.update(keys)
                try:
                    r = client.post(
                        "/v1/events", content=json.dumps({"events": events}), headers={"content-type": "text/plain"}
                    )
                except httpx.HTTPError:
                    return  # killed: this batch may or may not have landed
                with lock:
                    in_flight.difference_update(keys)
                    if r.status_code == 200:
                        acknowledged.update(keys)
                        acked_batches.append(events)
                n += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    time.sleep(random.Random(15).uniform(1.5, 3.0))
    server.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) > 500, "the writers got too few answers before the kill"

    logged, _ = load_events(root / "events")
    keys = logged.column("key").to_pylist()
    assert acknowledged <= set(keys)  # not one acknowledged event lost
    assert set(keys) <= acknowledged | in_flight  # nothing stored that was never sent
    # whole lines only, except possibly a tail torn by the kill
    [segment] = (root / "events" / "_log").glob("received=*/*.jsonl")
    complete = segment.read_bytes().rsplit(b"\n", 1)[0]
    assert all(json.loads(line) for line in complete.splitlines())

    # a restarted service forgets recent keys: a resent batch is stored again, and compaction drops the copy
    restarted = servers(root, poll_interval=0, events_rate=0, events_compact_interval=0)
    with restarted.client() as client:
        resend = client.post("/v1/events", json={"events": acked_batches[0]})
        assert resend.status_code == 200 and resend.json()["accepted"] == 20
    compacted = subprocess.run(
        [sys.executable, "-m", "recommender", "events", "compact", "--events", str(root / "events"), "--now"],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert compacted.returncode == 0, compacted.stderr
    parquet = pq.read_table(root / "events").column("key").to_pylist()
    assert len(parquet) == len(set(parquet)) == len(set(keys))
    assert acknowledged <= set(parquet)


def test_simulated_readers_over_http_and_the_planted_ranking_difference(
    servers, demo_index: Path, tmp_path: Path
) -> None:
    root = copy_index(demo_index, tmp_path / "index")
    diverse = tmp_path / "diverse.json"
    # Full boxes in both variants (no relevance floor): the planted difference is in what fills them.
    diverse.write_text(json.dumps({"diversity": 0.9, "min_relevance": 0}))
    variants = {"control": {"share": 0.5}, "diverse": {"share": 0.5, "config": str(diverse)}}
    # one client IP sends every reader's events: no rate limit
    server = servers(
        root, poll_interval=0, variants=json.dumps(variants), events_compact_interval=0, events_rate=0,
        ranking=json.dumps({"min_relevance": 0}),
    )  # fmt: skip
    ids, stories = load_stories(DEMO_CORPUS)
    transport = HttpTransport(server.url)
    try:
        summary = simulate(
            transport, ids, stories, visitors=800, seed=4, model=ReaderModel(heterogeneity=0.5), span=3600
        )
    finally:
        transport.close()
    assert summary.visitors == 800 and set(summary.visitors_by_variant) == {"control", "diverse"}
    result, _ = run_online_evaluation(root / "events", tmp_path / "report", shares={"control": 0.5, "diverse": 0.5})
    assert sum(v.clicks for v in result.variants) == summary.clicks
    assert sum(v.impressions for v in result.variants) == summary.impressions
    [comparison] = result.comparisons
    assert comparison.variant == "diverse" and comparison.difference < 0 and comparison.significant()
    assert not result.srm.mismatch
