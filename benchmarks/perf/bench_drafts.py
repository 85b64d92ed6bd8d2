"""Memory of a service under concurrent large drafts (``POST /v1/related``): the probe of issue 16 sent 80 drafts of
600 KB at once and saw RSS go from 0.95 to 1.76 GB. A draft's body is now at most 500,000 characters (a larger one
is a 422), so the burst sends bodies of that size.

    python -m benchmarks.perf.bench_drafts                    # demo index, 80 concurrent drafts of 500 KB
    python -m benchmarks.perf.bench_drafts --index-dir /tmp/reuters-idx --concurrency 80 --size 500000

Prints the server's RSS after warm-up (one small draft, the reference), its peak while the burst is answered (sampled
from /proc every 20 ms) and after, the growth as a ratio of the reference, and the drafts' latency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks.common import machine_line
from tests.support.paths import DEMO_CORPUS, subprocess_env
from tests.support.server import ServerProcess, copy_index


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _burst(url: str, concurrency: int, size: int) -> list[float]:
    body = ("Ceasefire talks in Lisgard resumed on Monday with both delegations present. " * (size // 70 + 1))[:size]
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def one(n: int) -> float:
            t0 = time.perf_counter()
            r = await client.post("/v1/related", json={"title": f"Draft {n}: ceasefire talks", "body": body})
            r.raise_for_status()
            return time.perf_counter() - t0

        return list(await asyncio.gather(*(one(n) for n in range(concurrency))))


def main() -> int:
    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--concurrency", type=int, default=80)
    parser.add_argument("--size", type=int, default=500_000, help="body characters per draft (the API allows 500,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-drafts-") as tmp:
        work = Path(tmp)
        if args.index_dir:
            root = copy_index(args.index_dir, work / "index")
        else:
            root = work / "index"
            subprocess.run(
                [sys.executable, "-m", "recommender", "build", str(DEMO_CORPUS), "--index-dir", str(root)],
                env=subprocess_env(), check=True, capture_output=True,
            )  # fmt: skip
        server = ServerProcess(root, work / "server.log", poll_interval=0, max_body_bytes=args.size * 2).start(120)
        try:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                while c.get("/readyz").status_code != 200:
                    time.sleep(0.1)
                c.post("/v1/related", json={"title": "warm-up"}).raise_for_status()  # model loaded, kernels warm
            assert server.proc is not None
            pid = server.proc.pid
            reference = _rss_mb(pid)
            peak = [reference]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], _rss_mb(pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.perf_counter()
            latencies = asyncio.run(_burst(server.url, args.concurrency, args.size))
            elapsed = time.perf_counter() - started
            stop.set()
            sampler.join()
            after = _rss_mb(pid)
        finally:
            server.stop()
    print(f"{args.concurrency} concurrent drafts of {args.size / 1000:.0f} KB answered in {elapsed:.1f} s")
    print(f"RSS: {reference:.0f} MB after warm-up (reference), peak {peak[0]:.0f} MB, {after:.0f} MB after")
    print(f"peak growth {peak[0] - reference:.0f} MB = {peak[0] / reference:.2f}x the reference")
    print(f"latency p50 {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")
    print(machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
