"""Helpers for the service tests: private index copies, publishing a new version, a uvicorn server subprocess.

The session fixtures ``embedder`` and ``demo_index`` come from tests/conftest.py.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from index import IndexDirectory

from .paths import REPO, subprocess_env

ADMIN_TOKEN = "test-admin-token"


def copy_index(src: Path, dst: Path) -> Path:
    """A private copy of a published index (tests that write must not touch the shared one)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build.lock", "live"))
    return dst


def publish_copy(root: Path, name: str | None = None) -> str:
    """Publish the current version again under a new name: a 'new build' without embedding anything."""
    directory = IndexDirectory(root)
    current = directory.current_path()
    name = name or directory.new_version_name()
    shutil.copytree(current, directory.version_path(name))
    directory.set_current(name)
    return name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Any, timeout: float, interval: float = 0.05, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


class ServerProcess:
    """``python -m service`` on a free loopback port, configured only through RECOMMENDER_* variables."""

    def __init__(self, index_dir: Path, log_path: Path, **settings: Any) -> None:
        self.index_dir = index_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = subprocess_env(
            RECOMMENDER_INDEX_DIR=str(index_dir),
            RECOMMENDER_HOST="127.0.0.1",
            RECOMMENDER_PORT=str(self.port),
            RECOMMENDER_ADMIN_TOKEN=ADMIN_TOKEN,
            RECOMMENDER_ACCESS_LOG="0",
            OMP_NUM_THREADS="1",
        )
        env.update({f"RECOMMENDER_{k.upper()}": str(v) for k, v in settings.items()})
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0, *, ready: bool = True) -> ServerProcess:
        """Start and wait for /healthz; with ``ready`` also for the index load to end (success or not): the
        server answers at once and loads in the background (``/readyz`` says ``loading`` meanwhile)."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_until(self._healthy, timeout, 0.1, f"server on port {self.port} (log: {self.log_path})")
        if ready:
            wait_until(self._loaded, timeout, 0.05, f"the index load on port {self.port} (log: {self.log_path})")
        return self

    def _loaded(self) -> bool:
        try:
            response = httpx.get(self.url + "/readyz", timeout=1.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 or "loading" not in response.text

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, **{"timeout": 30.0, **kwargs})


def admin_headers(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
