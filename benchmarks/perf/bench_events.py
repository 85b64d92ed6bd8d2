"""Event ingestion benchmark: POST /v1/events throughput and latency on one uvicorn worker, related-by-id throughput
while events arrive, and storage per event (log and Parquet).

Run (any published index; the demo corpus is enough, related answers come from the response cache)::

    recommender build recommender/data/demo_articles.jsonl --index-dir /tmp/demo-idx
    python -m benchmarks.perf.bench_events --index-dir /tmp/demo-idx [--duration 15] [--connections 8]

Three measurements, each against a fresh ``python -m service`` (one worker, access log off, no rate limit, no
background compaction), with an asyncio httpx load generator in its own process:

* ``ping``: a trivial FastAPI ``GET /ping``, the ceiling of the stack on this machine at this moment (reference);
* ``ingest``: ``--connections`` closed-loop clients posting batches of 20 distinct events (``text/plain``, as
  sendBeacon sends them): events/s acknowledged (each batch fsynced before its 200), p50/p99 latency. Target:
  >= 5,000 events/s with p99 < 50 ms;
* ``related alone`` then ``related + events``: related-by-id with the response cache (Zipf-distributed ids, 32
  connections), first alone, then while another process posts 1,000 events/s (50 batches of 20 per second, paced).
  Target: the second >= 90% of the first.

Then the log the ingest run wrote is compacted (``compact --now``) and bytes per event are reported for the JSON
lines log and for the Parquet partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, machine_line
from benchmarks.perf.bench_service import _free_port, _ids, _wait_http, _zipf_sample, start_trivial, stop
from tests.support.paths import subprocess_env


def start_service(index_dir: Path, events_dir: Path, port: int) -> subprocess.Popen:
    env = subprocess_env(
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        RECOMMENDER_INDEX_DIR=str(index_dir),
        RECOMMENDER_EVENTS_DIR=str(events_dir),
        RECOMMENDER_PORT=str(port),
        RECOMMENDER_HOST="127.0.0.1",
        RECOMMENDER_POLL_INTERVAL="0",
        RECOMMENDER_EVENTS_RATE="0",
        RECOMMENDER_EVENTS_COMPACT_INTERVAL="0",
        RECOMMENDER_ACCESS_LOG="0",
        RECOMMENDER_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=env)
    _wait_http(f"http://127.0.0.1:{port}/readyz")
    return proc


def _batch(ids: list[str], rng: random.Random, size: int = 20) -> bytes:
    """One page view's beacon: the impressions of a box and sometimes a click, of one visitor."""
    visitor = str(uuid.UUID(int=rng.getrandbits(128)))
    source = rng.choice(ids)
    request_id = f"{rng.getrandbits(96):024x}"
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    variant = rng.choice(("control", "diverse"))
    events = []
    for n in range(size):
        kind = "click" if n % 10 == 9 else "impression"
        position = 1 + n % 6
        events.append({"type": kind, "source_id": source, "item_id": rng.choice(ids), "position": position,
                       "request_id": request_id, "variant": variant, "visitor": visitor, "at": at})  # fmt: skip
    return json.dumps({"events": events}).encode()


async def _closed_loop(base: str, duration: float, connections: int, request: Any) -> dict[str, Any]:
    """``connections`` clients, each sending its next request when the last one is answered."""
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:
        deadline = time.perf_counter() + duration

        async def worker(number: int) -> None:
            nonlocal errors
            rng = random.Random(number)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    r = await request(client, rng)
                    errors += r.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        seconds = time.perf_counter() - started
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {"requests": len(latencies), "seconds": seconds, "rps": len(latencies) / seconds, "p50": pick(0.5),
            "p99": pick(0.99), "errors": errors}  # fmt: skip


def run_closed_loop(base: str, duration: float, connections: int, kind: str, ids: list[str], out: Any) -> None:
    """In a child process (the load generator must not share the GIL of the paced poster or the parent)."""
    if kind == "events":

        async def request(client: Any, rng: random.Random) -> Any:
            return await client.post("/v1/events", content=_batch(ids, rng), headers={"content-type": "text/plain"})
    elif kind == "ping":

        async def request(client: Any, rng: random.Random) -> Any:
            return await client.get("/ping")
    else:
        paths = [
            f"/v1/articles/{i}/related?k=6&visitor=v{n}"
            for n, i in enumerate(_zipf_sample(ids, 20_000, 1.1, random.Random(7)))
        ]

        async def request(client: Any, rng: random.Random) -> Any:
            return await client.get(rng.choice(paths))

    out.put(asyncio.run(_closed_loop(base, duration, connections, request)))


def run_paced_events(base: str, duration: float, per_second: float, ids: list[str], out: Any) -> None:
    """Open loop: ``per_second`` batches of 20 events, evenly spaced, whatever the answers take."""
    import httpx

    async def main() -> dict[str, Any]:
        rng = random.Random(99)
        sent = failed = 0
        async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
            start = time.perf_counter()
            tasks = []
            n = 0
            while (now := time.perf_counter() - start) < duration:
                target = n / per_second
                if target > now:
                    await asyncio.sleep(target - now)
                tasks.append(
                    asyncio.create_task(
                        client.post("/v1/events", content=_batch(ids, rng), headers={"content-type": "text/plain"})
                    )
                )
                n += 1
            for task in tasks:
                try:
                    r = await task
                    sent += r.status_code == 200
                    failed += r.status_code != 200
                except httpx.HTTPError:
                    failed += 1
        return {"batches": sent, "failed": failed, "events_per_s": 20 * sent / duration}

    out.put(asyncio.run(main()))


def _in_child(target: Any, *args: Any) -> multiprocessing.Process:
    queue: Any = multiprocessing.Queue()
    proc = multiprocessing.Process(target=target, args=(*args, queue))
    proc.start()
    proc.queue = queue  # type: ignore[attr-defined]
    return proc


def _result(proc: multiprocessing.Process) -> dict[str, Any]:
    value = proc.queue.get(timeout=600)  # type: ignore[attr-defined]
    proc.join()
    return value


def _bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def main() -> None:
    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=8, help="event posters in the ingest run")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s posted during the related run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    ids = _ids(args.index_dir)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        events_dir = Path(tmp) / "events"
        port = _free_port()
        proc = start_trivial(port)
        try:
            results["ping"] = _result(
                _in_child(run_closed_loop, f"http://127.0.0.1:{port}", args.duration, args.connections, "ping", ids)
            )
        finally:
            stop(proc)

        port = _free_port()
        proc = start_service(args.index_dir, events_dir, port)
        base = f"http://127.0.0.1:{port}"
        try:
            _result(_in_child(run_closed_loop, base, 2.0, args.connections, "events", ids))  # warm-up
            results["ingest"] = _result(
                _in_child(run_closed_loop, base, args.duration, args.connections, "events", ids)
            )
        finally:
            stop(proc)
        logged = sorted(events_dir.glob("_log/received=*/*.jsonl"))
        log_bytes = _bytes(logged)
        log_events = sum(p.read_bytes().count(b"\n") for p in logged)

        port = _free_port()
        proc = start_service(args.index_dir, Path(tmp) / "events-2", port)
        base = f"http://127.0.0.1:{port}"
        try:
            _result(_in_child(run_closed_loop, base, 5.0, 32, "related", ids))  # fills the cache
            results["related alone"] = _result(_in_child(run_closed_loop, base, args.duration, 32, "related", ids))
            poster = _in_child(run_paced_events, base, args.duration, args.rate / 20, ids)
            results["related + events"] = _result(_in_child(run_closed_loop, base, args.duration, 32, "related", ids))
            results["paced events"] = _result(poster)
        finally:
            stop(proc)

        started = time.perf_counter()
        compacted = subprocess.run(
            [sys.executable, "-m", "recommender", "events", "compact", "--events", str(events_dir), "--now"],
            cwd=REPO, env=subprocess_env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
        compact_seconds = time.perf_counter() - started
        parts = sorted(events_dir.glob("date=*/part-*.parquet"))
        parquet_bytes = _bytes(parts)
        import pyarrow.parquet as pq

        parquet_events = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        shutil.rmtree(events_dir, ignore_errors=True)

    ping, ingest = results["ping"], results["ingest"]
    print(f"\n{'run':<20}{'req/s':>10}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name in ("ping", "ingest", "related alone", "related + events"):
        r = results[name]
        events = f"{20 * r['rps']:.0f}" if name == "ingest" else "-"
        print(f"{name:<20}{r['rps']:>10.0f}{events:>10}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>8}")
    paced = results["paced events"]
    print(
        f"paced poster during the related run: {paced['events_per_s']:.0f} events/s acknowledged, {paced['failed']} failed"
    )
    rate = 20 * ingest["rps"]
    print(f"ingest: {rate:.0f} events/s = {ingest['rps'] / ping['rps']:.2f}x ping's requests/s; "
          f"target >= 5000 events/s with p99 < 50 ms: {'met' if rate >= 5000 and ingest['p99'] < 50 else 'NOT met'}")  # fmt: skip
    ratio = results["related + events"]["rps"] / results["related alone"]["rps"]
    print(f"related while ingesting {paced['events_per_s']:.0f} events/s: {ratio:.2f}x alone; target >= 0.90: "
          f"{'met' if ratio >= 0.9 else 'NOT met'}")  # fmt: skip
    print(f"storage: log {log_bytes / max(log_events, 1):.0f} bytes/event ({log_events} events, {log_bytes} bytes); "
          f"Parquet {parquet_bytes / max(parquet_events, 1):.1f} bytes/event ({parquet_events} events in {len(parts)} "
          f"parts, {parquet_bytes} bytes; compaction {compact_seconds:.1f} s including the CLI's start)")  # fmt: skip
    print(compacted.stdout.strip())
    if args.json:
        results["storage"] = {"log_bytes_per_event": log_bytes / max(log_events, 1),
                              "parquet_bytes_per_event": parquet_bytes / max(parquet_events, 1)}  # fmt: skip
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
