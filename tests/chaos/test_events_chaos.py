"""The short version of tests/chaos/kill_events.py: kill -9 the service during event bursts and compactions in
flight, then every acknowledged event is in Parquet exactly once."""

from __future__ import annotations

import random
from pathlib import Path

from tests.chaos import kill_events
from tests.support.server import copy_index


def test_kill_9_of_service_and_compaction_loses_and_duplicates_no_event(demo_index: Path, tmp_path: Path) -> None:
    index_dir = copy_index(demo_index, tmp_path / "index")
    ledger = kill_events.Ledger(seeded=kill_events.seed_closed_day(index_dir / "events", 40_000))
    rng = random.Random(20261130)
    for rnd in range(3):
        kill_events.run_round(index_dir, rnd, 4, rng, ledger, tmp_path)
    problems = ledger.errors + kill_events.verify(index_dir, ledger)
    assert problems == []
    assert len(ledger.acknowledged) > 300 and ledger.compactions_killed + ledger.compactions_finished == 3
