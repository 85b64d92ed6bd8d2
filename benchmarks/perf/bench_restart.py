"""What a restart costs: time to /healthz and to /readyz after kill -9, with 0 and with N pending live changes.

    python -m benchmarks.perf.bench_restart                 # the demo index, 1,000 pending changes
    python -m benchmarks.perf.bench_restart --pending 255 --rounds 5

Builds the demo index once, then for each round: starts ``python -m service`` on a copy, pushes ``--pending`` live
changes (PUT, each logged with its vector), kills the process with SIGKILL, starts it again and times, from the
moment the process is started, the first 200 of ``/healthz`` and of ``/readyz``, then the answer to a first draft
(``POST /v1/related``, which waits for the model where related-by-id does not). The same is measured with no
pending change in the same run (the reference), and the ratio is printed. Targets (issue 16): /healthz within 1 s of
process start, ready within 5 s with 1,000 pending changes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import machine_line
from tests.support.paths import DEMO_CORPUS, subprocess_env
from tests.support.server import ServerProcess, admin_headers, copy_index


def _first_200(url: str, started: float, deadline: float) -> float:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"no 200 from {url}")


def _restart(root: Path, log: Path) -> tuple[float, float, float, dict]:
    server = ServerProcess(root, log, poll_interval=0)
    started = time.monotonic()
    server.proc = subprocess.Popen(
        [sys.executable, "-m", "service"], env=server.env, stdout=open(log, "ab"), stderr=subprocess.STDOUT
    )  # noqa: SIM115
    try:
        healthy = _first_200(server.url + "/healthz", started, started + 120)
        ready = _first_200(server.url + "/readyz", started, started + 600)
        # The first draft after ready: it waits for the model (which loads in the background), related-by-id not.
        draft = {"title": "Dock workers strike again", "body": "The harbour is closed for a third day."}
        httpx.post(server.url + "/v1/related", json=draft, timeout=120).raise_for_status()
        drafted = time.monotonic() - started
        info = httpx.get(server.url + "/v1/index", timeout=5).json()
    finally:
        server.stop()
    return healthy, ready, drafted, info


def _round(demo: Path, work: Path, pending: int, label: str) -> tuple[float, float, float, dict]:
    root = copy_index(demo, work / f"index-{label}")
    server = ServerProcess(root, work / f"{label}-writes.log", poll_interval=0).start(timeout=120)
    with server.client(headers=admin_headers()) as c:
        for n in range(pending):
            body = {
                "title": f"Harbour strike update {n}",
                "body": "Dock workers walked out again. " * 30,
                "section": "business",
            }
            r = c.put(f"/v1/articles/bench/{n}", json=body)
            r.raise_for_status()
    server.kill9()
    return _restart(root, work / f"{label}-restart.log")


def main() -> int:
    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        work = Path(tmp)
        demo = work / "demo"
        subprocess.run(
            [sys.executable, "-m", "recommender", "build", str(DEMO_CORPUS), "--index-dir", str(demo)],
            env=subprocess_env(), check=True, capture_output=True,
        )  # fmt: skip
        rows: dict[str, list[tuple[float, float, float]]] = {"0 pending": [], f"{args.pending} pending": []}
        last: dict = {}
        for r in range(args.rounds):
            for label, pending in (("0 pending", 0), (f"{args.pending} pending", args.pending)):
                healthy, ready, drafted, info = _round(demo, work, pending, f"{r}-{pending}")
                rows[label].append((healthy, ready, drafted))
                last[label] = info.get("last_load")
                print(
                    f"round {r + 1} {label:>14}: /healthz {healthy:6.2f} s, /readyz {ready:6.2f} s, "
                    f"first draft answered {drafted:6.2f} s",
                    flush=True,
                )
    print()
    reference = statistics.median(ready for _, ready, _ in rows["0 pending"])
    for label, values in rows.items():
        healthy = statistics.median(h for h, _, _ in values)
        ready = statistics.median(r for _, r, _ in values)
        drafted = statistics.median(d for _, _, d in values)
        print(
            f"{label:>14}: median /healthz {healthy:.2f} s, /readyz {ready:.2f} s ({ready / reference:.2f}x the "
            f"0-pending restart), first draft answered {drafted:.2f} s (waits for the model: {drafted - ready:.2f} s "
            "after ready)"
        )
        print(f"{'':>14}  last load: {json.dumps(last[label])}")
    print(machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
