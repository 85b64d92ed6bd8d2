"""Crash safety with real processes: kill -9 during builds, a full disk, two builds at once."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index import IndexDirectory, Manifest
from recommender.engine import Recommender
from tests.support.paths import DEMO_CORPUS, subprocess_env


def _build_cmd(export: Path, index_dir: Path) -> list[str]:
    return [sys.executable, "-m", "recommender", "build", str(export), "--index-dir", str(index_dir)]


def _small_export(tmp_path: Path, n: int = 40) -> Path:
    lines = DEMO_CORPUS.read_text(encoding="utf-8").splitlines()[:n]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _assert_servable(index_dir: Path) -> str:
    d = IndexDirectory(index_dir)
    path = d.current_path()
    Manifest.read(path).verify_files(path, digests=True)
    rec = Recommender.open(index_dir)
    assert rec.related(rec.store.ids[0], 3)
    return d.current()


def kill_build_repeatedly(export: Path, index_dir: Path, runs: int, seed: int = 0) -> list[tuple[float, str]]:
    """Start a build, SIGKILL it after a random delay, check the published version; repeat."""
    rng = random.Random(seed)
    outcomes = []
    for run in range(runs):
        proc = subprocess.Popen(
            _build_cmd(export, index_dir), env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # The first kill lands before any build could finish (the imports alone take longer), so every run kills
        # at least one build; the others land anywhere in a build.
        delay = rng.uniform(0.3, 1.2) if run == 0 else rng.uniform(0.5, 7.0)
        try:
            proc.wait(delay)
            outcomes.append((delay, "finished"))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            outcomes.append((delay, "killed"))
        _assert_servable(index_dir)
    return outcomes


def test_kill_9_during_builds_never_breaks_the_published_version(tmp_path):
    export = _small_export(tmp_path)
    index_dir = tmp_path / "idx"
    first = subprocess.run(_build_cmd(export, index_dir), env=subprocess_env(), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    outcomes = kill_build_repeatedly(export, index_dir, runs=3, seed=20261130)
    assert any(o == "killed" for _, o in outcomes)
    # The next build clears the stale lock and the leftovers of the killed ones, then publishes.
    final = subprocess.run(_build_cmd(export, index_dir), env=subprocess_env(), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert not any((index_dir / ".staging").iterdir())
    _assert_servable(index_dir)


def test_two_builds_at_once(tmp_path):
    export = _small_export(tmp_path)
    index_dir = tmp_path / "idx"
    first = subprocess.Popen(
        _build_cmd(export, index_dir), env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lock = index_dir / "build.lock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
        time.sleep(0.05)
    second = subprocess.run(_build_cmd(export, index_dir), env=subprocess_env(), capture_output=True, text=True)
    assert second.returncode == 5
    assert second.stderr.strip().startswith(f"error: another build is running on {index_dir} (pid {first.pid} since ")
    assert first.wait(120) == 0
    _assert_servable(index_dir)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
        ).returncode
    ):
        pytest.skip("mounting a small tmpfs needs root (run as root to test a full disk)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_during_build_changes_nothing_published(tmp_path, small_disk):
    export = _small_export(tmp_path)
    index_dir = small_disk / "idx"
    ok = subprocess.run(_build_cmd(export, index_dir), env=subprocess_env(), capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    published = IndexDirectory(index_dir).current()
    # Leave about 100 KB free: too little for another version.
    free = shutil.disk_usage(small_disk).free
    with open(small_disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - 100_000))
    full = subprocess.run(
        _build_cmd(export, index_dir) + ["--full"], env=subprocess_env(), capture_output=True, text=True
    )
    assert full.returncode == 6, full.stderr
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no space left on device while writing ")
    assert lines[0].endswith("; nothing was published and the current version is unchanged")
    assert IndexDirectory(index_dir).current() == published
    assert not any((index_dir / ".staging").iterdir())
    _assert_servable(index_dir)
    (small_disk / "filler").unlink()
    again = subprocess.run(_build_cmd(export, index_dir), env=subprocess_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
