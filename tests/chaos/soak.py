"""Soak: sustained mixed traffic against one uvicorn process, with live writes and reloads; no request may fail.

    python -m tests.chaos.soak                                   # 10 minutes on the demo corpus
    python -m tests.chaos.soak --minutes 30 --clients 8 --articles ../shared/datasets/reuters21578/articles.jsonl

Traffic (loopback only; ``--clients`` closed-loop threads, each sending its next request when the last one
answered, so the load is bounded): related by id (60%, random k and sometimes filters), related for a draft's text
(10%), one article (8%), title search (5%), PUT (10%: insert or replace, each client owns a pool of 50 ids),
DELETE (5%, of its own live ids), readiness (2%). Beside it a driver thread: ``POST /v1/admin/reload`` every
``--reload-every`` s, a new version published (a copy of the current one: full load and log replay) every
``--publish-every`` s, and a real incremental ``recommender build`` of the export (folds and compacts the
write-ahead log, the poller switches) every ``--build-every`` s.

Reports requests served, failures (anything but the expected 2xx, or a connection error: must be 0), the
server's RSS at start, after the warm-up and at the end, and its largest growth over the after-warm-up level
(the peak, sampled every 0.5 s, must stay under ``--max-growth-mb``, default 100), and per-minute p50/p95/p99
latency. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from index import IndexDirectory, LockedError
from recommender.evaluation.metrics import percentiles
from tests.support.paths import DEMO_CORPUS, subprocess_env
from tests.support.server import ServerProcess, admin_headers, copy_index, publish_copy

MIX = [
    ("related_id", 60),
    ("related_text", 10),
    ("article", 8),
    ("search", 5),
    ("put", 10),
    ("delete", 5),
    ("readyz", 2),
]
WORDS = [
    "ceasefire", "talks", "harbour", "strike", "comet", "probe", "election", "coalition", "budget", "storm", "flood",
    "vaccine", "trial", "market", "rally", "court", "ruling", "orbit", "launch", "drought", "harvest", "tariff", "summit",
]  # fmt: skip


@dataclass
class Stats:
    """Per-request samples (offset seconds, op, latency seconds) and failures, shared by the client threads."""

    started: float
    samples: list[tuple[float, str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, seconds: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.samples.append((time.monotonic() - self.started, op, seconds))
            if not ok:
                self.failures.append(f"{op}: {detail}"[:300])


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _client_loop(url: str, cid: int, corpus: list[str], stats: Stats, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    ops, weights = zip(*MIX)
    pool = [f"soak/{cid}/{n}" for n in range(50)]
    present: set[str] = set()
    admin = admin_headers()
    with httpx.Client(base_url=url, timeout=60.0) as c:
        while not stop.is_set():
            op = rng.choices(ops, weights)[0]
            if op == "delete" and not present:
                op = "put"
            params: dict[str, Any] = {}
            try:
                t0 = time.perf_counter()
                if op == "related_id":
                    source = rng.choice(sorted(present)) if present and rng.random() < 0.2 else rng.choice(corpus)
                    params = {"k": rng.choice([3, 6, 6, 6, 10])}
                    if rng.random() < 0.2:
                        params["section"] = rng.choice(["world", "business", "science", "sport"])
                    if rng.random() < 0.1:
                        params.update(freshness=rng.choice([1, 7, 30]), diversity=rng.choice([0.0, 0.2]))
                    r = c.get(f"/v1/articles/{source}/related", params=params)
                    expected = (200,)
                elif op == "related_text":
                    title = " ".join(rng.sample(WORDS, 4))
                    r = c.post("/v1/related", json={"title": title, "body": " ".join(rng.choices(WORDS, k=60)), "k": 6})
                    expected = (200,)
                elif op == "article":
                    r = c.get(f"/v1/articles/{rng.choice(corpus)}")
                    expected = (200,)
                elif op == "search":
                    r = c.get("/v1/articles", params={"query": rng.choice(WORDS), "limit": 10})
                    expected = (200,)
                elif op == "put":
                    article_id = rng.choice(pool)
                    body = {
                        "title": f"{' '.join(rng.sample(WORDS, 5))} ({cid}-{rng.randrange(10**9)})",
                        "body": " ".join(rng.choices(WORDS, k=rng.randint(20, 400))),
                        "section": rng.choice(["world", "business", "science", "sport"]),
                        "published_at": f"2026-08-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
                        "tags": rng.sample(WORDS, 2),
                    }
                    r = c.put(f"/v1/articles/{article_id}", json=body, headers=admin)
                    expected = (200, 201)
                    if r.status_code in expected:
                        present.add(article_id)
                elif op == "delete":
                    article_id = rng.choice(sorted(present))
                    r = c.delete(f"/v1/articles/{article_id}", headers=admin)
                    expected = (204,)
                    if r.status_code in expected:
                        present.discard(article_id)
                else:
                    r = c.get("/readyz")
                    expected = (200,)
                seconds = time.perf_counter() - t0
                ok = r.status_code in expected
                stats.record(
                    op, seconds, ok, "" if ok else f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:200]}"
                )
            except httpx.HTTPError as exc:
                stats.record(op, time.perf_counter() - t0, False, f"{exc!r}")


def _driver(
    server: ServerProcess,
    root: Path,
    export: Path | None,
    args: argparse.Namespace,
    stop: threading.Event,
    stats: Stats,
    events: dict[str, Any],
) -> None:
    """Reloads, publishes and builds on their schedules; samples the server's RSS every 2 s."""
    next_reload = args.reload_every
    next_publish = args.publish_every
    next_build = args.build_every if export is not None and args.build_every else float("inf")
    admin = admin_headers()
    with httpx.Client(base_url=server.url, timeout=120.0) as c:
        while not stop.wait(0.5):
            now = time.monotonic() - stats.started
            assert server.proc is not None
            events["rss"].append((now, _rss_mb(server.proc.pid)))
            if now >= next_reload:
                next_reload += args.reload_every
                t0 = time.perf_counter()
                r = c.post("/v1/admin/reload", headers=admin)
                stats.record(
                    "reload", time.perf_counter() - t0, r.status_code == 200, f"{r.status_code} {r.text[:200]}"
                )
                events["admin_reloads"] += 1
            if now >= next_publish:
                next_publish += args.publish_every
                try:
                    with IndexDirectory(root).lock():
                        events["published"].append(publish_copy(root))
                except LockedError:
                    pass  # a build is running; publish at the next turn
            if now >= next_build:
                next_build += args.build_every
                t0 = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "recommender", "build", str(export), "--index-dir", str(root)],
                    env=subprocess_env(OMP_NUM_THREADS="1"),
                    capture_output=True,
                    text=True,
                    check=False,
                )
                ok = done.returncode == 0
                stats.record("build", time.perf_counter() - t0, ok, done.stderr.strip()[-300:])
                events["builds"] += ok


def _percentiles(seconds: list[float]) -> dict[str, float]:
    return {k if k == "n" else f"{k}_ms": v for k, v in percentiles([s * 1000 for s in seconds], digits=1).items()}


def run(
    root: Path, args: argparse.Namespace, *, export: Path | None, log_path: Path, echo: Any = print
) -> dict[str, Any]:
    """Run the soak against a published index in ``root``; returns the summary (failures must be empty)."""
    server = ServerProcess(root, log_path, poll_interval=args.poll_interval).start()
    try:
        with server.client() as c:
            deadline = time.monotonic() + 60
            while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            # warm the model so the first PUT does not count its load as latency
            c.post("/v1/related", json={"title": "warm up"}).raise_for_status()
        corpus = json.loads((IndexDirectory(root).current_path() / "ids.json").read_text(encoding="utf-8"))
        assert server.proc is not None
        rss_start = _rss_mb(server.proc.pid)
        stats = Stats(started=time.monotonic())
        stop = threading.Event()
        events: dict[str, Any] = {"rss": [], "admin_reloads": 0, "published": [], "builds": 0}
        threads = [
            threading.Thread(target=_client_loop, args=(server.url, n, corpus, stats, stop, args.seed + n), daemon=True)
            for n in range(args.clients)
        ]
        driver = threading.Thread(target=_driver, args=(server, root, export, args, stop, stats, events), daemon=True)
        for t in [*threads, driver]:
            t.start()
        duration = args.minutes * 60
        minute = 0
        while time.monotonic() - stats.started < duration:
            time.sleep(min(1.0, duration - (time.monotonic() - stats.started)))
            elapsed = time.monotonic() - stats.started
            if elapsed >= (minute + 1) * 60 or elapsed >= duration:
                minute += 1
                with stats.lock:
                    recent = [s for t, _, s in stats.samples if t >= elapsed - 60]
                    served, failed = len(stats.samples), len(stats.failures)
                rss = events["rss"][-1][1] if events["rss"] else float("nan")
                echo(
                    f"[{elapsed / 60:5.1f} min] requests {served}, failures {failed}, rss {rss:.0f} MB, "
                    f"last minute p50/p99 {_percentiles(recent).get('p50_ms')}/{_percentiles(recent).get('p99_ms')} ms, "
                    f"admin reloads {events['admin_reloads']}, "
                    f"versions published {len(events['published'])}, builds {events['builds']}"
                )
        stop.set()
        for t in [*threads, driver]:
            t.join(timeout=180)
        with server.client() as c:
            info = c.get("/v1/index").json()
            metrics = c.get("/metrics").text
        rss_end = _rss_mb(server.proc.pid)
    finally:
        server.stop()
    server_errors = [
        line
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        if " ERROR " in line or "Traceback" in line
    ]
    five_xx_lines = [
        line
        for line in metrics.splitlines()
        # /readyz answers 503 while the index loads by contract (the harness polls it until ready)
        if line.startswith("recommender_http_requests_total{") and 'status="5' in line and 'route="/readyz"' not in line
    ]
    five_xx = sum(float(line.rsplit(" ", 1)[1]) for line in five_xx_lines)
    warm = [mb for t, mb in events["rss"] if t >= args.warmup]
    rss_after_warmup = warm[0] if warm else rss_end
    growth = max(warm + [rss_end]) - rss_after_warmup
    per_minute = defaultdict(list)
    per_op = defaultdict(list)
    for t, op, seconds in stats.samples:
        if op not in ("reload", "build"):
            per_minute[int(t // 60) + 1].append(seconds)
        per_op[op].append(seconds)
    failures = list(stats.failures)
    if growth > args.max_growth_mb:
        failures.append(f"RSS grew {growth:.0f} MB after the warm-up (bound {args.max_growth_mb} MB)")
    if five_xx:
        failures.append(f"/metrics counts {five_xx:.0f} responses with status 5xx: {'; '.join(five_xx_lines)}")
    failures += [f"server log: {line}" for line in server_errors[:5]]
    requests = sum(1 for _, op, _ in stats.samples if op not in ("reload", "build"))
    return {
        "minutes": args.minutes,
        "clients": args.clients,
        "requests": requests,
        "requests_per_s": round(requests / max(1e-9, args.minutes * 60), 1),
        "by_op": {op: _percentiles(v) for op, v in sorted(per_op.items())},
        "failures": len(failures),
        "admin_reloads": events["admin_reloads"],
        "versions_published": len(events["published"]),
        "builds": events["builds"],
        "final_version": info.get("version"),
        "final_articles": info.get("article_count"),
        "final_pending_changes": info.get("pending_changes"),
        "rss_mb": {
            "start": round(rss_start, 1),
            "after_warmup": round(rss_after_warmup, 1),
            "end": round(rss_end, 1),
            "max": round(max([rss_end] + [mb for _, mb in events["rss"]]), 1),
            "growth_after_warmup": round(growth, 1),  # peak (sampled every 0.5 s) minus the after-warm-up level
            "end_minus_after_warmup": round(rss_end - rss_after_warmup, 1),
            "bound": args.max_growth_mb,
        },
        "latency_per_minute": {m: _percentiles(v) for m, v in sorted(per_minute.items())},
        "rss_mb_every_10s": [
            round(max(mb for t, mb in events["rss"] if int(t // 10) == b))
            for b in sorted({int(t // 10) for t, _ in events["rss"]})
        ],  # the peak of each 10 s
        "failure_samples": failures[:20],
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="duration [10]")
    p.add_argument("--clients", type=int, default=4, help="concurrent closed-loop clients [4]")
    p.add_argument("--articles", type=Path, help="export to build and rebuild [the demo corpus, unless --index-dir]")
    p.add_argument(
        "--index-dir",
        type=Path,
        help="copy this published index instead of building first (builds "
        "during the soak then need --articles, the export it was built from)",
    )
    p.add_argument("--reload-every", type=float, default=20.0, help="seconds between POST /v1/admin/reload [20]")
    p.add_argument("--publish-every", type=float, default=45.0, help="seconds between new published versions [45]")
    p.add_argument("--build-every", type=float, default=150.0, help="seconds between real builds; 0 = none [150]")
    p.add_argument("--poll-interval", type=float, default=2.0, help="the service's RECOMMENDER_POLL_INTERVAL [2]")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS baseline is taken [60]")
    p.add_argument("--max-growth-mb", type=float, default=100.0, help="allowed RSS growth after the warm-up [100]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the summary here")
    return p


def main() -> int:
    args = parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        root = work / "index"
        if args.index_dir:
            copy_index(args.index_dir, root)
            export = args.articles
        else:
            export = args.articles or DEMO_CORPUS
            print(f"building {export} ...", flush=True)
            subprocess.run(
                [sys.executable, "-m", "recommender", "build", str(export), "--index-dir", str(root)],
                env=subprocess_env(OMP_NUM_THREADS="1"),
                check=True,
                capture_output=True,
            )
        summary = run(root, args, export=export, log_path=work / "server.log")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    ok = summary["failures"] == 0
    rss = summary["rss_mb"]
    print(
        f"{'PASS' if ok else 'FAIL'}: {summary['requests']} requests in {summary['minutes']} min, "
        f"{summary['failures']} failures, {summary['admin_reloads']} admin reloads, "
        f"{summary['versions_published']} versions published, {summary['builds']} builds; "
        f"RSS {rss['after_warmup']} -> {rss['end']} MB (max growth {rss['growth_after_warmup']} MB, bound {rss['bound']})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
