"""kill -9 the service during bursts of concurrent PUT/DELETE, restart it, and check every acknowledged write.

    python -m tests.chaos.kill_service                      # 10 rounds on a copy of the demo index
    python -m tests.chaos.kill_service --rounds 30 --writers 8 --index-dir /srv/related/index-copy

Each round starts ``python -m service`` (one uvicorn process, loopback), checks the state left by the previous
round, then runs ``--writers`` threads that insert, replace and delete articles (each thread owns its ids, so the
expected state of every id is known), and sends SIGKILL to the server at a random moment of the burst.

A write counts as acknowledged when its 2xx answer arrived before the kill. After the restart each id must be in
its last acknowledged state: present with the acknowledged title, or gone. A write in flight at the kill (sent, not
answered) may land or not, and either outcome is accepted. The write-ahead log must hold only whole entries: a
torn tail left by the kill is cut off by the next append. Deleted articles must not be recommended. Finally (unless
``--no-build``) a real incremental build folds the log into a new version, and every acknowledged write is checked
once more on it.

Prints one line per round and a summary; exits 1 if any acknowledged write was lost or anything else failed.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.paths import DEMO_CORPUS, subprocess_env
from tests.support.server import ServerProcess, admin_headers, copy_index

GONE = None  # expected state of a deleted (or never created) id


@dataclass
class Ledger:
    """What each id should be after a restart. ``acked[id]`` is a title (present) or GONE; ``inflight[id]`` holds
    the state a write sent but not answered would leave (it may or may not have landed)."""

    acked: dict[str, str | None] = field(default_factory=dict)
    inflight: dict[str, str | None] = field(default_factory=dict)
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged writes not found after a restart
    errors: list[str] = field(default_factory=list)  # answers other than 2xx
    uncertain_landed: int = 0
    uncertain_dropped: int = 0


def _writer(
    url: str,
    wid: int,
    ledger: Ledger,
    lock: threading.Lock,
    stop: threading.Event,
    rng: random.Random,
    demo_ids: list[str],
) -> None:
    """Insert / replace / delete this writer's own ids until the server dies or ``stop`` is set."""
    headers = admin_headers()
    mine = [f"kill/w{wid}/{n}" for n in range(60)]
    with httpx.Client(base_url=url, timeout=30.0, headers=headers) as client:
        seq = 0
        while not stop.is_set():
            with lock:
                present = [i for i in mine + demo_ids if ledger.acked.get(i, GONE if i in mine else "demo") is not GONE]
            roll = rng.random()
            if roll < 0.65 or not present:
                article_id = rng.choice(mine)
                seq += 1
                title = f"Harbour strike update {wid}-{seq}-{rng.randrange(10**6)}"
                body = {
                    "title": title,
                    "body": "Dock workers " + "walked out again. " * rng.randint(1, 400),
                    "section": rng.choice(["world", "business", "science"]),
                    "published_at": f"2026-08-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
                }
                expected: str | None = title
                request = ("PUT", f"/v1/articles/{article_id}", body)
            else:
                article_id = rng.choice(present)
                expected = GONE
                request = ("DELETE", f"/v1/articles/{article_id}", None)
            with lock:
                ledger.inflight[article_id] = expected
            method, path, payload = request
            try:
                r = client.request(method, path, json=payload) if payload else client.request(method, path)
            except httpx.HTTPError:
                return  # the server was killed: this write stays in flight (unknown outcome)
            with lock:
                ledger.inflight.pop(article_id, None)
                if r.status_code in (200, 201, 204):
                    ledger.acked[article_id] = expected
                    ledger.acknowledged += 1
                else:
                    ledger.errors.append(f"{method} {article_id}: unexpected {r.status_code} {r.text[:200]}")
                    return


def _state(client: httpx.Client, article_id: str) -> str | None:
    r = client.get("/v1/articles/" + article_id)
    if r.status_code == 404:
        return GONE
    r.raise_for_status()
    return r.json()["title"]


def verify(url: str, ledger: Ledger, demo_ids: list[str]) -> list[str]:
    """Compare the server's state with the ledger (a mismatch goes to ``ledger.lost``) and resolve in-flight writes
    into it. Returns other problems."""
    problems: list[str] = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for article_id in sorted(set(ledger.acked) | set(ledger.inflight)):
            actual = _state(client, article_id)
            base = ledger.acked.get(article_id, GONE if article_id.startswith("kill/") else "demo")
            wanted = {base}
            if article_id in ledger.inflight:
                wanted.add(ledger.inflight[article_id])
            if base == "demo" and actual is not GONE:
                actual = "demo"  # an untouched demo article: its title is whatever the corpus says
            if actual not in wanted:
                ledger.lost.append(f"{article_id}: found {actual!r}, acknowledged {base!r}")
                ledger.acked[article_id] = actual  # report each loss once
                ledger.inflight.pop(article_id, None)
                continue
            if article_id in ledger.inflight:
                landed = actual == ledger.inflight.pop(article_id) and actual != base
                ledger.uncertain_landed += landed
                ledger.uncertain_dropped += not landed
            if actual != "demo":
                ledger.acked[article_id] = actual
        deleted = [i for i in demo_ids if ledger.acked.get(i, "demo") is GONE]
        for source in ("demo-006", "demo-050", "demo-100"):
            if ledger.acked.get(source, "demo") is GONE:
                continue
            items = client.get(f"/v1/articles/{source}/related", params={"k": 50}).json()["items"]
            shown = {i["id"] for i in items} & set(deleted)
            if shown:
                problems.append(f"deleted articles recommended for {source}: {sorted(shown)}")
    return problems


def check_wal(index_dir: Path) -> tuple[list[str], bool]:
    """Every complete line is a valid entry with increasing sequence numbers; returns (problems, torn_tail)."""
    path = index_dir / "live" / "wal.jsonl"
    if not path.exists():
        return [], False
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop() != b""  # bytes after the last newline: an entry cut by the kill
    problems, last = [], 0
    for n, raw in enumerate(lines, 1):
        try:
            entry = json.loads(raw)
            seq = int(entry["seq"])
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"wal line {n}: not a whole entry ({exc})")
            continue
        if seq <= last:
            problems.append(f"wal line {n}: sequence {seq} after {last}")
        last = seq
    return problems, torn


def run(
    index_dir: Path,
    rounds: int,
    *,
    writers: int = 4,
    burst: tuple[float, float] = (0.5, 3.0),
    seed: int = 0,
    build: bool = True,
    log_dir: Path | None = None,
    echo: Any = print,
) -> dict[str, Any]:
    """The experiment; returns the summary dict (``lost`` must be 0, ``problems`` empty)."""
    rng = random.Random(seed)
    log_dir = log_dir or index_dir.parent
    ledger = Ledger()
    demo_ids = [f"demo-{n:03d}" for n in range(1, 141)]
    writer_demo = {w: demo_ids[w::writers][:5] for w in range(writers)}  # each writer may delete a few demo articles
    problems: list[str] = []
    torn_tails = 0
    restarts: list[float] = []
    for round_no in range(rounds + 1):
        started = time.monotonic()
        server = ServerProcess(index_dir, log_dir / f"kill-service-{round_no}.log", poll_interval=1).start()
        try:
            with server.client() as c:
                deadline = time.monotonic() + 60
                while c.get("/readyz").status_code != 200:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"server not ready after restart: {c.get('/readyz').text}")
                    time.sleep(0.05)
            restarts.append(time.monotonic() - started)
            found = verify(server.url, ledger, demo_ids)
            problems += found
            if round_no == rounds:
                break
            stop = threading.Event()
            lock = threading.Lock()
            threads = [
                threading.Thread(
                    target=_writer,
                    args=(server.url, w, ledger, lock, stop, random.Random(rng.random()), writer_demo[w]),
                    daemon=True,
                )
                for w in range(writers)
            ]
            acked_before = ledger.acknowledged
            for t in threads:
                t.start()
            # the first write after a start loads the model: count the burst from the first acknowledgement
            first_deadline = time.monotonic() + 60
            while ledger.acknowledged == acked_before and time.monotonic() < first_deadline and not ledger.errors:
                time.sleep(0.01)
            time.sleep(rng.uniform(*burst))
            server.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=60)
            wal_problems, torn = check_wal(index_dir)
            problems += wal_problems
            torn_tails += torn
            echo(
                f"round {round_no + 1}/{rounds}: ready {restarts[-1]:.1f}s after start, previous state verified "
                f"(lost so far {len(ledger.lost)}); acknowledged {ledger.acknowledged - acked_before} writes, "
                f"{len(ledger.inflight)} in flight at the kill{', torn wal tail' if torn else ''}"
                f"{'; problems: ' + '; '.join(found) if found else ''}"
            )
        finally:
            server.stop()
    problems += ledger.errors
    # After the last restart one more append cuts any torn tail: the log must then be all whole entries.
    server = ServerProcess(index_dir, log_dir / "kill-service-final.log", poll_interval=1).start()
    try:
        with server.client(headers=admin_headers()) as c:
            assert c.put("/v1/articles/kill/final", json={"title": "final write"}).status_code in (200, 201)
            ledger.acked["kill/final"] = "final write"
            ledger.acknowledged += 1
        wal_problems, torn = check_wal(index_dir)
        problems += wal_problems + (["wal still ends in a torn entry after an append"] if torn else [])
        problems += verify(server.url, ledger, demo_ids)
    finally:
        server.stop()
    build_seconds = None
    if build:
        t0 = time.monotonic()
        env = subprocess_env()
        done = subprocess.run(
            [sys.executable, "-m", "recommender", "build", str(DEMO_CORPUS), "--index-dir", str(index_dir)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        build_seconds = time.monotonic() - t0
        if done.returncode != 0:
            problems.append(f"build after the rounds failed: {done.stderr.strip()[-500:]}")
        else:
            server = ServerProcess(index_dir, log_dir / "kill-service-built.log", poll_interval=1).start()
            try:
                with server.client() as c:
                    pending = c.get("/v1/index").json()["pending_changes"]
                    if pending:
                        problems.append(f"{pending} live changes still pending after the build folded the log")
                problems += [f"after the build: {p}" for p in verify(server.url, ledger, demo_ids)]
            finally:
                server.stop()
    lost = len(ledger.lost)
    problems = ledger.lost + problems
    return {
        "rounds": rounds,
        "seed": seed,
        "writers": writers,
        "acknowledged": ledger.acknowledged,
        "lost": lost,
        "in_flight_landed": ledger.uncertain_landed,
        "in_flight_dropped": ledger.uncertain_dropped,
        "torn_wal_tails_cut": torn_tails,
        "restart_to_ready_s": {"median": sorted(restarts)[len(restarts) // 2], "max": max(restarts)},
        "build_after_s": round(build_seconds, 1) if build_seconds else None,
        "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="kill -9 this many times [10]")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer threads [4]")
    parser.add_argument(
        "--burst",
        type=float,
        nargs=2,
        default=(0.5, 3.0),
        metavar=("MIN", "MAX"),
        help="seconds of writing before the kill, drawn uniformly [0.5 3.0]",
    )
    parser.add_argument("--index-dir", type=Path, help="a published index to copy (default: build the demo corpus)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-build", action="store_true", help="skip the final build that folds the log in")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    with tempfile.TemporaryDirectory(prefix="kill-service-") as tmp:
        work = Path(tmp)
        root = work / "index"
        if args.index_dir:
            copy_index(args.index_dir, root)
        else:
            print("building the demo index...", flush=True)
            subprocess.run(
                [sys.executable, "-m", "recommender", "build", str(DEMO_CORPUS), "--index-dir", str(root)],
                env=subprocess_env(),
                check=True,
                capture_output=True,
            )
        t0 = time.monotonic()
        summary = run(
            root,
            args.rounds,
            writers=args.writers,
            burst=tuple(args.burst),
            seed=seed,
            build=not args.no_build,
            log_dir=work,
        )
        summary["seconds"] = round(time.monotonic() - t0, 1)
    problems = summary.pop("problems")
    print(json.dumps(summary, indent=2))
    for p in problems[:20]:
        print("PROBLEM:", p)
    ok = not problems and summary["lost"] == 0
    print(
        f"{'PASS' if ok else 'FAIL'}: {summary['rounds']} kill -9 rounds, {summary['acknowledged']} acknowledged writes, "
        f"{summary['lost']} lost, {len(problems)} problems"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
