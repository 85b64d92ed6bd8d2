"""HTTP benchmark: related-by-id requests/s and p50/p99 latency of one uvicorn worker, next to a trivial FastAPI app.

Run (needs a built index; wrk is used when installed, else an asyncio httpx load generator)::

    recommender build /work/shared/datasets/reuters21578/articles.jsonl --index-dir /tmp/reuters-idx
    python -m benchmarks.perf.bench_service --index-dir /tmp/reuters-idx \
        [--duration 10] [--connections 32] [--tool wrk|httpx]

Each server runs alone (one uvicorn worker, access log off) while the load generator hits it, so the two
measurements see the same machine. Three runs:

* ``ping``: a trivial FastAPI app, ``GET /ping`` returning a constant JSON: the ceiling of the stack itself;
* ``related, cache off``: ``GET /v1/articles/{id}/related?k=6`` over uniformly random ids of the whole corpus
  with the response cache disabled: every request ranks (worst case);
* ``related, cache on``: the same route with ids drawn from a Zipf(1.1) popularity, as article views are
  (a few stories get most views), with the in-process cache (10,000 entries) warmed for ``--warmup`` seconds
  by the same traffic: the production case. The cache hit ratio during the measurement is printed.

The target is related (cache on) >= 50% of ping's requests/s; the cache-off ratio is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, machine_line
from tests.support.paths import subprocess_env


# -- the trivial app --------------------------------------------------------------------------------
def serve_trivial(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/events")
    async def sink(request: Request) -> dict[str, int]:
        """Takes an event batch and stores nothing: the control of bench_events (the poster's load on the
        machine, without the service doing the work)."""
        await request.body()
        return {"accepted": 20, "duplicates": 0}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- servers ------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not become ready: {url}")


def _env(**extra: str) -> dict[str, str]:
    # One worker on a small machine: BLAS threads would only fight the load generator for cores.
    return subprocess_env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)


def start_service(index_dir: Path, port: int, cache_size: int) -> subprocess.Popen:
    env = _env(
        RECOMMENDER_INDEX_DIR=str(index_dir),
        RECOMMENDER_PORT=str(port),
        RECOMMENDER_HOST="127.0.0.1",
        RECOMMENDER_POLL_INTERVAL="0",
        RECOMMENDER_CACHE_SIZE=str(cache_size),
        RECOMMENDER_ACCESS_LOG="0",
        RECOMMENDER_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=env)
    _wait_http(f"http://127.0.0.1:{port}/readyz")
    return proc


def start_trivial(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-trivial", str(port)], cwd=REPO, env=_env())
    _wait_http(f"http://127.0.0.1:{port}/ping")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- load generators ------------------------------------------------------------------------------
#: Ends every wrk script: one JSON line with the totals, which :func:`wrk` parses.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"p50\\": %f, \\"p99\\": %f, \\"errors\\": %d, \\"non2xx\\": %d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
_WRK_PATHS = """
local paths = {}
for line in io.lines("%(lines)s") do paths[#paths + 1] = line end
local n = 0
math.randomseed(%(seed)d)
request = function()
  n = n + 1
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def wrk(base: str, script: str, lines: list[str], duration: float, connections: int) -> dict[str, Any]:
    """Run wrk (one thread) with a Lua ``script`` whose ``%(lines)s`` names a file holding ``lines`` (and
    ``%(seed)d`` a fixed seed), ended by :data:`WRK_DONE`; its totals with ``rps``."""
    with tempfile.TemporaryDirectory() as tmp:
        lines_file = Path(tmp) / "lines.txt"
        lines_file.write_text("\n".join(lines) + "\n")
        path = Path(tmp) / "script.lua"
        path.write_text(script % {"lines": lines_file, "seed": 42} + WRK_DONE)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "10s", "-s", str(path), base],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    data = json.loads(re.search(r"^JSON (.*)$", out, re.MULTILINE).group(1))
    data["rps"] = data["requests"] / data["seconds"]
    return data


def run_wrk(base: str, paths: list[str], duration: float, connections: int) -> dict[str, Any]:
    return wrk(base, _WRK_PATHS, paths, duration, connections)


async def _httpx_load(base: str, paths: list[str], duration: float, connections: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    rng = random.Random(42)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    r = await client.get(rng.choice(paths))
                    if r.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - started
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50": pick(0.5),
        "p99": pick(0.99),
        "errors": errors,
        "non2xx": 0,
    }


def measure(
    tool: str, base: str, paths: list[str], duration: float, connections: int, warmup: float = 2.0
) -> dict[str, Any]:
    """Warm up (first requests pay for lazy loading; the cached run fills its cache), then measure."""
    if tool == "wrk":
        run_wrk(base, paths, warmup, connections)
    else:
        asyncio.run(_httpx_load(base, paths, warmup, connections))
    before = _cache_counts(base)
    result = (
        run_wrk(base, paths, duration, connections)
        if tool == "wrk"
        else asyncio.run(_httpx_load(base, paths, duration, connections))
    )
    after = _cache_counts(base)
    if before and after:
        hits, misses = after[0] - before[0], after[1] - before[1]
        result["cache_hit_ratio"] = hits / (hits + misses) if hits + misses else None
    return result


def _cache_counts(base: str) -> tuple[float, float] | None:
    """(hits, misses) from the service's /metrics; None for the trivial app."""
    import httpx

    try:
        text = httpx.get(base + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    values = dict(re.findall(r"^(recommender_cache_(?:hits|misses)_total) ([0-9.e+]+)$", text, re.MULTILINE))
    if len(values) != 2:
        return None
    return float(values["recommender_cache_hits_total"]), float(values["recommender_cache_misses_total"])


# -- main -----------------------------------------------------------------------------------------
def _ids(index_dir: Path) -> list[str]:
    from index import IndexDirectory

    path = IndexDirectory(index_dir).current_path() / "ids.json"
    data = json.loads(path.read_text())
    return data["ids"] if isinstance(data, dict) else data


def _zipf_sample(ids: list[str], n: int, s: float, rng: random.Random) -> list[str]:
    order = ids[:]
    rng.shuffle(order)  # popularity unrelated to id order
    weights = [1.0 / (rank**s) for rank in range(1, len(order) + 1)]
    return rng.choices(order, weights=weights, k=n)


def main() -> None:
    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", type=Path, default=Path("/tmp/reuters-idx"))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tool", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds of warm-up for the cached run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve-trivial", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_trivial:
        serve_trivial(args.serve_trivial)
        return

    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    rng = random.Random(7)
    ids = _ids(args.index_dir)
    uniform = [f"/v1/articles/{i}/related?k=6" for i in rng.sample(ids, min(len(ids), 20_000))]
    zipf = [f"/v1/articles/{i}/related?k=6" for i in _zipf_sample(ids, 50_000, 1.1, rng)]
    print(
        f"index {args.index_dir} ({len(ids)} articles); load generator {tool}, "
        f"{args.connections} connections, {args.duration:.0f}s per run",
        flush=True,
    )

    results: dict[str, dict[str, Any]] = {}
    port = _free_port()
    proc = start_trivial(port)
    try:
        results["ping"] = measure(tool, f"http://127.0.0.1:{port}", ["/ping"], args.duration, args.connections)
    finally:
        stop(proc)
    runs = (("related, cache off", 0, uniform, 2.0), ("related, cache on", 10_000, zipf, args.warmup))
    for name, cache_size, paths, warmup in runs:
        port = _free_port()
        proc = start_service(args.index_dir, port, cache_size)
        try:
            results[name] = measure(tool, f"http://127.0.0.1:{port}", paths, args.duration, args.connections, warmup)
        finally:
            stop(proc)

    print(f"\n{'run':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'cache hits':>12}")
    for name, r in results.items():
        ratio = r.get("cache_hit_ratio")
        hits = f"{ratio:.1%}" if ratio is not None else "-"
        print(f"{name:<22}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors'] + r['non2xx']:>8}{hits:>12}")
    ping = results["ping"]["rps"]
    for name in ("related, cache off", "related, cache on"):
        print(f"{name} / ping = {results[name]['rps'] / ping:.2f}")
    target = results["related, cache on"]["rps"] / ping
    print(f"target >= 0.50: {'met' if target >= 0.5 else 'NOT met'} ({target:.2f})")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"tool": tool, "connections": args.connections, "duration": args.duration, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
