"""kill -9 the service during bursts of event batches, and kill -9 compactions, then check every acknowledged event
is stored exactly once.

    python -m tests.chaos.kill_events                        # 10 rounds on a copy of the demo index
    python -m tests.chaos.kill_events --rounds 30 --writers 8 --seed 20261130

Before the rounds, a closed day's log of ``--seeded`` events is written (received two days ago), so that every
round's compaction has a real job to be killed in: reading the log, writing Parquet parts, saving offsets, deleting
segments. Each round starts ``python -m service``, runs ``--writers`` threads that post batches of 20 events (each
batch its own events, so every event's key is known), starts ``recommender events compact --now`` alongside, and
sends SIGKILL to both at random moments. An event counts as acknowledged when its batch's 200 arrived before the
kill; a batch in flight may land or not.

At the end one compaction runs to completion, and the Parquet dataset must hold every acknowledged event and every
seeded one exactly once, and nothing that was never sent. Prints one line per round and a summary; exits 1 on any
failure.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from recommender.events.log import EventLog
from recommender.events.schema import Limits, key_of, parse_batch
from tests.support.paths import REPO, subprocess_env
from tests.support.server import ServerProcess, copy_index


@dataclass
class Ledger:
    acknowledged: set[int] = field(default_factory=set)
    in_flight: set[int] = field(default_factory=set)
    seeded: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    compactions_killed: int = 0
    compactions_finished: int = 0


def _events(tag: str, n: int, at: str, size: int = 20) -> list[dict]:
    return [
        {
            "type": "click" if i % 9 == 8 else "impression",
            "source_id": f"demo-{1 + n % 140:03d}",
            "item_id": f"demo-{1 + (n + i) % 140:03d}",
            "position": 1 + i % 6,
            "request_id": f"{tag}n{n}",
            "variant": "control" if n % 2 else "b",
            "visitor": f"{tag}-{n % 97}",
            "at": at,
        }
        for i in range(size)
    ]


def _keys(events: list[dict], now: float | None = None) -> set[int]:
    return {key_of(e) for e in parse_batch({"events": events}, Limits(max_events=100_000, now=now))}


def seed_closed_day(events_dir: Path, count: int) -> set[int]:
    """``count`` events received two days ago (a closed day: compaction compacts and deletes it)."""
    received = time.time() - 2 * 86400
    log = EventLog(events_dir, clock=lambda: received)
    at = datetime.fromtimestamp(received - 3600, tz=UTC).isoformat()
    keys: set[int] = set()
    for n in range(count // 20):
        batch = _events("seed", n, at)
        parsed = parse_batch({"events": batch}, Limits(max_events=100, now=received))
        log.append(parsed)
        keys |= {key_of(e) for e in parsed}
    log.close()
    return keys


def _writer(url: str, wid: int, rnd: int, ledger: Ledger, lock: threading.Lock, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=10.0) as client:
        n = 0
        while not stop.is_set():
            events = _events(f"r{rnd}w{wid}", n, datetime.now(UTC).isoformat())
            keys = _keys(events)
            with lock:
                ledger.in_flight |= keys
            try:
                r = client.post(
                    "/v1/events", content=json.dumps({"events": events}), headers={"content-type": "text/plain"}
                )
            except httpx.HTTPError:
                return
            with lock:
                if r.status_code == 200:
                    ledger.acknowledged |= keys
                    ledger.in_flight -= keys
                else:
                    ledger.errors.append(f"round {rnd} writer {wid}: {r.status_code} {r.text[:200]}")
                    return
            n += 1


def _compact(events_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "recommender", "events", "compact", "--events", str(events_dir), "--now"],
        cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def stage(events_dir: Path) -> str:
    """Where a killed compaction stopped, from what it left on disk."""
    pending = 0
    for state in events_dir.glob("_log/received=*/_state.json"):
        pending += json.loads(state.read_text()).get("pending") is not None
    parts = len(list(events_dir.glob("date=*/part-*.parquet")))
    closed = len(list(events_dir.glob("_log/received=*")))
    return f"{pending} job(s) pending, {parts} parts, {closed} received day(s) in the log"


def run_round(index_dir: Path, rnd: int, writers: int, rng: random.Random, ledger: Ledger, log_dir: Path) -> str:
    server = ServerProcess(index_dir, log_dir / f"kill-events-{rnd}.log", poll_interval=0, events_rate=0,
                           events_compact_interval=0).start()  # fmt: skip
    lock, stop = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=_writer, args=(server.url, w, rnd, ledger, lock, stop)) for w in range(writers)]
    before = len(ledger.acknowledged)
    for t in threads:
        t.start()
    compaction = _compact(index_dir / "events")
    kill_compaction_at = rng.uniform(0.2, 6.0)
    kill_server_at = rng.uniform(0.5, 3.0)
    started = time.monotonic()
    where = ""
    for moment, what in sorted([(kill_compaction_at, "compaction"), (kill_server_at, "server")]):
        time.sleep(max(0.0, moment - (time.monotonic() - started)))
        if what == "server":
            server.kill9()
            stop.set()
        elif compaction.poll() is None:
            compaction.send_signal(signal.SIGKILL)
            compaction.wait()
            ledger.compactions_killed += 1
            where = f" ({stage(index_dir / 'events')})"
    if compaction.poll() is None:
        compaction.wait(timeout=120)
    if compaction.returncode == 0:
        ledger.compactions_finished += 1
    elif compaction.returncode != -signal.SIGKILL:
        ledger.errors.append(
            f"round {rnd}: compaction exited {compaction.returncode}: {compaction.stderr.read()[-500:]!r}"
        )
    for t in threads:
        t.join(timeout=30)
    server.stop()
    return (
        f"round {rnd}: {len(ledger.acknowledged) - before} events acknowledged; server killed at {kill_server_at:.2f}s, "
        f"compaction {'killed at' if compaction.returncode == -signal.SIGKILL else 'finished before'} "
        f"{kill_compaction_at:.2f}s{where}"
    )


def verify(index_dir: Path, ledger: Ledger) -> list[str]:
    """Run a compaction to the end, then every acknowledged and seeded event must be in Parquet exactly once."""
    import pyarrow.parquet as pq

    from recommender.events.read import load_events

    problems: list[str] = []
    final = subprocess.run(
        [sys.executable, "-m", "recommender", "events", "compact", "--events", str(index_dir / "events"), "--now"],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if final.returncode != 0:
        problems.append(f"final compaction failed: {final.stderr[-500:]}")
    keys = pq.read_table(index_dir / "events", columns=["key"]).column("key").to_pylist()
    stored = set(keys)
    if len(keys) != len(stored):
        problems.append(f"{len(keys) - len(stored)} events stored twice in Parquet")
    lost = (ledger.acknowledged | ledger.seeded) - stored
    if lost:
        problems.append(f"{len(lost)} acknowledged or seeded events lost")
    unknown = stored - ledger.acknowledged - ledger.seeded - ledger.in_flight
    if unknown:
        problems.append(f"{len(unknown)} stored events were never sent")
    table, stats = load_events(index_dir / "events")
    if table.num_rows != len(stored):
        problems.append(f"the reader sees {table.num_rows} events, Parquet holds {len(stored)}")
    if list((index_dir / "events" / "_log").glob("received=*/*.jsonl")) and stats.log_events:
        problems.append(f"{stats.log_events} events still only in the log after a full compaction")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--seeded", type=int, default=100_000, help="events of the closed day compacted under kills")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--index-dir", type=Path, help="an index to copy (default: build the demo corpus)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        source = args.index_dir
        if source is None:
            source = tmp_path / "demo"
            subprocess.run([sys.executable, "-m", "recommender", "build", str(REPO / "recommender/data/demo_articles.jsonl"),
                            "--index-dir", str(source)], cwd=REPO, env=subprocess_env(), check=True, capture_output=True)  # fmt: skip
        index_dir = copy_index(source, tmp_path / "index")
        ledger = Ledger(seeded=seed_closed_day(index_dir / "events", args.seeded))
        for rnd in range(args.rounds):
            print(run_round(index_dir, rnd, args.writers, rng, ledger, tmp_path), flush=True)
        problems = ledger.errors + verify(index_dir, ledger)
    print(
        f"{args.rounds} rounds: {len(ledger.acknowledged)} events acknowledged, {len(ledger.seeded)} seeded; "
        f"compactions killed {ledger.compactions_killed}, finished {ledger.compactions_finished}; "
        f"{'OK: none lost, none duplicated' if not problems else 'FAILED'}"
    )
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
