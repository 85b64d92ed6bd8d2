"""Versioned directory: staging, atomic publish, rollback, gc, and the build lock (incl. a killed holder)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from index import IndexDirectory, LockedError, Manifest, NoVersionError, VectorStore


def _publish(directory: IndexDirectory, name: str, n: int = 3) -> None:
    with directory.stage(name) as (name, staged):
        VectorStore.build([f"a{i}" for i in range(n)], np.eye(n, 4, dtype=np.float32)).save(staged)
        m = Manifest(model="m", dimension=4, count=n, index_type="flat")
        for f in ("ids.json", "vectors.faiss", "vectors.npy"):
            m.record_file(staged, f)
        m.write(staged)
        directory.promote(name, staged)
    directory.set_current(name)


def test_publish_rollback_gc(tmp_path):
    d = IndexDirectory(tmp_path)
    assert d.current() is None
    with pytest.raises(NoVersionError, match="no published index in .*; run `recommender build` first"):
        d.current_path()
    for name in ("v1", "v2", "v3"):
        _publish(d, name)
    assert d.current() == "v3" and d.names() == ["v1", "v2", "v3"]
    assert d.rollback() == "v2" and d.current() == "v2"
    assert d.rollback("v3") == "v3"
    with pytest.raises(NoVersionError, match="no version 'v9'"):
        d.rollback("v9")
    d.rollback("v1")
    assert d.gc(keep=1) == ["v2"]  # v3 is newest, v1 is current: both kept
    assert d.names() == ["v1", "v3"]
    with pytest.raises(NoVersionError, match="no earlier version to roll back to"):
        d.rollback()
    with pytest.raises(NoVersionError, match="invalid version name '../x'"):
        d.version_path("../x")


def test_failed_stage_leaves_nothing(tmp_path):
    d = IndexDirectory(tmp_path)
    _publish(d, "v1")
    with pytest.raises(RuntimeError):
        with d.stage("v2") as (_, staged):
            (staged / "half").write_text("x")
            raise RuntimeError("boom")
    assert d.names() == ["v1"] and d.current() == "v1"
    assert not any((tmp_path / ".staging").iterdir())


def test_broken_version_is_listed_and_refused(tmp_path):
    d = IndexDirectory(tmp_path)
    _publish(d, "v1")
    (tmp_path / "versions" / "v0").mkdir()
    infos = {i.name: i for i in d.list()}
    assert infos["v0"].error.endswith("manifest missing")
    with pytest.raises(Exception, match="manifest missing"):
        d.set_current("v0")
    assert d.current() == "v1"


def test_second_lock_fails_at_once(tmp_path):
    d = IndexDirectory(tmp_path)
    with d.lock():
        start = time.monotonic()
        with pytest.raises(LockedError, match=f"another build is running on {tmp_path} \\(pid {os.getpid()} since"):
            d.lock().acquire()
        assert time.monotonic() - start < 1
    with d.lock():  # released: acquirable again
        pass


def test_stale_lock_of_killed_process_is_cleared(tmp_path):
    code = textwrap.dedent(f"""
        import time
        from index import IndexDirectory  # the installed package (pip install -e)
        IndexDirectory({str(tmp_path)!r}).lock().acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError):
            IndexDirectory(tmp_path).lock().acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert f"pid {proc.pid}" in (tmp_path / "build.lock").read_text()  # the dead holder's note is still there
        with IndexDirectory(tmp_path).lock():
            pass
    finally:
        proc.kill()
