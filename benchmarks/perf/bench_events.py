"""Event ingestion benchmark: POST /v1/events throughput and latency on one uvicorn worker, related-by-id throughput
while events arrive, and storage per event (log and Parquet).

Run (any published index; the demo corpus is enough, related answers come from the response cache)::

    recommender build recommender/data/demo_articles.jsonl --index-dir /tmp/demo-idx
    python -m benchmarks.perf.bench_events --index-dir /tmp/demo-idx [--duration 15] [--connections 8]

Three measurements, each against a fresh ``python -m service`` (one worker, access log off, no rate limit, no
background compaction), with wrk as the load generator (``apt-get install wrk``; without it an asyncio httpx client
in its own process, which saturates near 1,000 requests/s on this machine and then measures itself):

* ``ping``: a trivial FastAPI ``GET /ping``, the ceiling of the stack on this machine at this moment (reference);
* ``ingest``: ``--connections`` closed-loop clients posting batches of 20 distinct events (``text/plain``, as
  sendBeacon sends them): the most events/s acknowledged (each batch fsynced before its 200, counted by the
  service's own metrics), and p50/p99 latency at that saturation; then ``ingest at target``: 250 batches/s paced
  (5,000 events/s, open loop), p50/p99 latency from when each batch was due. Target: >= 5,000 events/s with
  p99 < 50 ms;
* ``related alone`` then ``related + events``: related-by-id with the response cache (Zipf-distributed ids, each
  request with its own ``visitor``, 32 connections), first alone, then while another process posts 1,000 events/s
  (50 batches of 20 per second, paced); ``--pairs`` alternating pairs, the median ratio reported. Target: the
  second >= 90% of the first. On 2 cores the poster is a third process competing with wrk and the service, so
  each pair also runs ``related + poster to a sink``: the same poster sending to a trivial server that stores
  nothing; ``related + events`` over that control is the service's own cost of ingesting.

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
import re
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
from benchmarks.perf.bench_service import _free_port, _ids, _wait_http, _zipf_sample, run_wrk, start_trivial, stop, wrk
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
    # The model loads in the background after the index (seconds of CPU holding the GIL): measure after it, as a
    # service that has been up for a while.
    import httpx

    deadline = time.monotonic() + 120
    while httpx.get(f"http://127.0.0.1:{port}/v1/index", timeout=5).json()["model_state"] != "ready":
        if time.monotonic() > deadline:
            raise SystemExit("the service's model did not load")
        time.sleep(0.2)
    time.sleep(2.0)
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


_WRK_EVENTS = """
local ids = {}
for line in io.lines("%(lines)s") do ids[#ids + 1] = line end
math.randomseed(%(seed)d)
local n = 0
request = function()
  n = n + 1
  local visitor = string.format("%%08x-%%d", math.random(0, 2147483647), n)
  local rid = string.format("r%%023d", n)
  local at = os.date("!%%Y-%%m-%%dT%%H:%%M:%%S.000Z")
  local source = ids[math.random(#ids)]
  local first = math.random(#ids)
  local parts = {}
  for i = 1, 20 do
    local kind = (i %% 10 == 0) and "click" or "impression"
    parts[i] = string.format(
      '{"type":"%%s","source_id":"%%s","item_id":"%%s","position":%%d,"request_id":"%%s","variant":"control",' ..
      '"visitor":"%%s","at":"%%s"}', kind, source, ids[(first + i) %% #ids + 1], 1 + (i - 1) %% 6, rid, visitor, at)
  end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "text/plain"}, body)
end
"""


def wrk_events(base: str, ids: list[str], duration: float, connections: int) -> dict[str, Any]:
    data = wrk(base, _WRK_EVENTS, ids, duration, connections)
    data["errors"] += data.pop("non2xx")
    return data


def _accepted(base: str) -> float:
    import httpx

    text = httpx.get(base + "/metrics", timeout=10).text
    return float(re.search(r"^recommender_events_accepted_total ([0-9.e+]+)$", text, re.MULTILINE).group(1))


def measure(tool: str, base: str, duration: float, connections: int, kind: str, ids: list[str]) -> dict[str, Any]:
    """One closed-loop run of ``kind`` (ping, events or related) with wrk or, without it, httpx in a child process."""
    if tool == "httpx":
        return _result(_in_child(run_closed_loop, base, duration, connections, kind, ids))
    if kind == "events":
        return wrk_events(base, ids, duration, connections)
    if kind == "ping":
        paths = ["/ping"]
    else:
        paths = [
            f"/v1/articles/{i}/related?k=6&visitor=v{n}"
            for n, i in enumerate(_zipf_sample(ids, 20_000, 1.1, random.Random(7)))
        ]
    result = run_wrk(base, paths, duration, connections)
    result["errors"] += result.pop("non2xx")
    return result


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


class _Connection:
    """A bare HTTP/1.1 keep-alive connection on asyncio streams: a tenth of httpx's CPU per request, so a paced
    generator in Python keeps its schedule at hundreds of requests per second on a busy 2-core machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, host: str, path: str, body: bytes) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        if not status_line:  # the server closed this kept-alive connection (idle past its keep-alive timeout)
            raise ConnectionResetError("connection closed by the server")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


def run_paced_events(base: str, duration: float, per_second: float, ids: list[str], out: Any) -> None:
    """Open loop: ``per_second`` batches of 20 events, evenly spaced, whatever the answers take. Latency counts from
    when a batch was due, not from when it was sent (a stalled server cannot hide its stall)."""
    host, port = base.removeprefix("http://").split(":")

    async def main() -> dict[str, Any]:
        rng = random.Random(99)
        bodies = [_batch(ids, rng) for _ in range(int(duration * per_second) + 1)]
        latencies: list[float] = []
        failed = 0
        idle: list[_Connection] = []
        start = time.perf_counter()

        async def send(due: float, body: bytes) -> None:
            nonlocal failed
            connection = idle.pop() if idle else await _Connection.open(host, int(port))
            try:
                try:
                    status = await connection.post(host, "/v1/events", body)
                except ConnectionResetError:  # a stale kept-alive connection: once more on a new one
                    connection = await _Connection.open(host, int(port))
                    status = await connection.post(host, "/v1/events", body)
                failed += status != 200
                idle.append(connection)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                failed += 1
            latencies.append(time.perf_counter() - start - due)

        tasks = []
        for n, body in enumerate(bodies):
            due = n / per_second
            if due >= duration:
                break
            wait = due - (time.perf_counter() - start)
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(send(due, body)))
        await asyncio.gather(*tasks)
        for connection in idle:
            connection.writer.close()
        latencies.sort()
        ok = len(latencies) - failed

        def pick(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

        return {
            "batches": ok,
            "failed": failed,
            "events_per_s": 20 * ok / duration,
            "p50": pick(0.5),
            "p99": pick(0.99),
        }

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
    parser.add_argument("--pairs", type=int, default=3, help="alternating related runs, alone and with events")
    parser.add_argument("--tool", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    ids = _ids(args.index_dir)
    print(
        f"index {args.index_dir} ({len(ids)} articles); load generator {tool}; {args.duration:.0f} s per run",
        flush=True,
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        events_dir = Path(tmp) / "events"
        port = _free_port()
        proc = start_trivial(port)
        try:
            results["ping"] = measure(tool, f"http://127.0.0.1:{port}", args.duration, args.connections, "ping", ids)
        finally:
            stop(proc)

        port = _free_port()
        proc = start_service(args.index_dir, events_dir, port)
        base = f"http://127.0.0.1:{port}"
        try:
            measure(tool, base, 2.0, args.connections, "events", ids)  # warm-up
            before = _accepted(base)
            results["ingest"] = measure(tool, base, args.duration, args.connections, "events", ids)
            results["ingest"]["events_per_s"] = (_accepted(base) - before) / results["ingest"]["seconds"]
            # the target rate, paced (open loop): the latency a site sending 5,000 events/s would see
            results["ingest at target"] = _result(_in_child(run_paced_events, base, args.duration, 250.0, ids))
        finally:
            stop(proc)
        logged = sorted(events_dir.glob("_log/received=*/*.jsonl"))
        log_bytes = _bytes(logged)
        log_events = sum(p.read_bytes().count(b"\n") for p in logged)

        port = _free_port()
        proc = start_service(args.index_dir, Path(tmp) / "events-2", port)
        base = f"http://127.0.0.1:{port}"
        try:
            measure(tool, base, 5.0, 32, "related", ids)  # fills the cache
            # alternating pairs: on a shared machine a neighbour's burst then hits one pair, not the comparison
            # The control: the same poster sending to a trivial server on the same 2 cores (a sink that stores
            # nothing), so the machine carries the poster's load but the service does no event work.
            sink_port = _free_port()
            sink = start_trivial(sink_port)
            pairs = []
            for _ in range(args.pairs):
                alone = measure(tool, base, args.duration, 32, "related", ids)
                poster = _in_child(
                    run_paced_events, f"http://127.0.0.1:{sink_port}", args.duration, args.rate / 20, ids
                )
                control = measure(tool, base, args.duration, 32, "related", ids)
                _result(poster)
                poster = _in_child(run_paced_events, base, args.duration, args.rate / 20, ids)
                loaded = measure(tool, base, args.duration, 32, "related", ids)
                pairs.append((alone, loaded, _result(poster), control))
            stop(sink)
            ratios = [loaded["rps"] / alone["rps"] for alone, loaded, _, _ in pairs]
            own = [loaded["rps"] / control["rps"] for _, loaded, _, control in pairs]
            middle = sorted(range(len(pairs)), key=lambda i: ratios[i])[len(pairs) // 2]
            (results["related alone"], results["related + events"], results["paced events"],
             results["related + poster to a sink"]) = pairs[middle]  # fmt: skip
            results["related ratios"] = ratios
            results["service's own ratios"] = own
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
    for name in ("ping", "ingest", "related alone", "related + poster to a sink", "related + events"):
        r = results[name]
        events = f"{r['events_per_s']:.0f}" if name == "ingest" else "-"
        print(f"{name:<20}{r['rps']:>10.0f}{events:>10}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>8}")
    paced = results["paced events"]
    print(
        f"paced poster during the related run: {paced['events_per_s']:.0f} events/s acknowledged, {paced['failed']} failed"
    )
    target = results["ingest at target"]
    print(
        f"ingest paced at 250 batches/s: {target['events_per_s']:.0f} events/s acknowledged, p50 {target['p50']:.2f} ms, "
        f"p99 {target['p99']:.2f} ms, {target['failed']} failed"
    )
    rate = ingest["events_per_s"]
    met = rate >= 5000 and target["events_per_s"] >= 4950 and target["p99"] < 50
    print(
        f"ingest: at most {rate:.0f} events/s acknowledged ({ingest['rps'] / ping['rps']:.2f}x ping's requests/s, p99 "
        f"{ingest['p99']:.1f} ms at saturation); target >= 5000 events/s with p99 < 50 ms: {'met' if met else 'NOT met'}"
    )
    ratio = results["related + events"]["rps"] / results["related alone"]["rps"]
    each = ", ".join(f"{r:.2f}" for r in results["related ratios"])
    print(
        f"related while ingesting {paced['events_per_s']:.0f} events/s: {ratio:.2f}x alone (median of {each}; the "
        f"table shows that pair); target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'}"
    )
    owns = results["service's own ratios"]
    own = sorted(owns)[len(owns) // 2]
    listed = ", ".join(f"{r:.2f}" for r in owns)
    print(
        f"related with the service ingesting, against the same poster sending to a sink: {own:.2f}x (median of "
        f"{listed}): the service's own cost, with the poster's load on the machine set apart"
    )
    print(
        f"storage: log {log_bytes / max(log_events, 1):.0f} bytes/event ({log_events} events, {log_bytes} bytes); "
        f"Parquet {parquet_bytes / max(parquet_events, 1):.1f} bytes/event ({parquet_events} events in {len(parts)} "
        f"parts, {parquet_bytes} bytes; compaction {compact_seconds:.1f} s including the CLI's start)"
    )
    print(compacted.stdout.strip())
    if args.json:
        results["storage"] = {
            "log_bytes_per_event": log_bytes / max(log_events, 1),
            "parquet_bytes_per_event": parquet_bytes / max(parquet_events, 1),
        }
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
