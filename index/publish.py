"""Versioned index directory: immutable version folders, an atomic CURRENT pointer, a build lock.

Layout::

    ROOT/CURRENT              name of the published version (replaced atomically)
    ROOT/versions/<name>/     one complete, validated build each; never modified after publish
    ROOT/.staging/<name>/     a build in progress (removed by the next build if the builder died)
    ROOT/build.lock           held with flock() while a build runs; the kernel drops it if the builder dies
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .errors import LockedError, ManifestError, NoVersionError, PublishError
from .manifest import Manifest
from .persist import atomic_write_bytes, fsync_dir

__all__ = ["IndexDirectory", "VersionInfo", "BuildLock"]

logger = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
STAGING_DIR = ".staging"
LOCK_FILE = "build.lock"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class VersionInfo:
    name: str
    path: Path
    current: bool
    manifest: Manifest | None
    error: str | None = None


class BuildLock:
    """An exclusive flock on ``build.lock``. A lock left by a killed build is stale by construction:
    the kernel releases flock locks with the process, so the next build simply acquires it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            try:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            raise LockedError(
                f"another build is running on {self.path.parent} ({holder or 'unknown holder'}); wait for it to finish"
            ) from None
        previous = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if previous:
            logger.warning("cleared a stale build lock left by %s", previous)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now(timezone.utc).isoformat(timespec='seconds')}".encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an empty file means released cleanly
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "BuildLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class IndexDirectory:
    """All published versions of one index, and the pointer to the one being served."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def versions_dir(self) -> Path:
        return self.root / VERSIONS_DIR

    # -- reading ------------------------------------------------------------------------------
    def current(self) -> str | None:
        """Name of the published version, or None when nothing is published yet."""
        try:
            name = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def current_path(self) -> Path:
        name = self.current()
        if name is None:
            raise NoVersionError(f"no published index in {self.root}; run `recommender build` first")
        path = self.version_path(name)
        if not path.is_dir():
            raise NoVersionError(f"{self.root}: CURRENT names version {name!r}, which is missing")
        return path

    def version_path(self, name: str) -> Path:
        if not _VERSION_RE.match(name):
            raise NoVersionError(f"invalid version name {name!r}")
        return self.versions_dir / name

    def names(self) -> list[str]:
        """Version names, oldest first (names start with a UTC timestamp, so they sort by time)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and _VERSION_RE.match(p.name))

    def list(self) -> list[VersionInfo]:
        current = self.current()
        out = []
        for name in self.names():
            path = self.versions_dir / name
            try:
                manifest, error = Manifest.read(path), None
            except ManifestError as exc:
                manifest, error = None, str(exc)
            out.append(VersionInfo(name, path, name == current, manifest, error))
        return out

    def info(self, name: str | None = None) -> VersionInfo:
        name = name or self.current()
        if name is None:
            raise NoVersionError(f"no published index in {self.root}; run `recommender build` first")
        for info in self.list():
            if info.name == name:
                return info
        raise NoVersionError(f"no version {name!r} in {self.root}")

    # -- writing ------------------------------------------------------------------------------
    def lock(self) -> BuildLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return BuildLock(self.root / LOCK_FILE)

    def new_version_name(self) -> str:
        """Names sort in build order (rollback and gc rely on it), even for two builds in one second."""
        existing = self.names()
        while True:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
            name = f"v{stamp}-{secrets.token_hex(3)}"
            if not existing or name > existing[-1]:
                return name
            time.sleep(0.001)

    def clean_staging(self) -> int:
        """Remove folders left by builds that died. Only call while holding the build lock."""
        staging = self.root / STAGING_DIR
        removed = 0
        if staging.is_dir():
            for leftover in staging.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
                removed += 1
        return removed

    @contextmanager
    def stage(self, name: str | None = None) -> Iterator[tuple[str, Path]]:
        """A private folder for a new version; it vanishes unless :meth:`publish` promotes it."""
        name = name or self.new_version_name()
        path = self.root / STAGING_DIR / name
        path.mkdir(parents=True, exist_ok=False)
        try:
            yield name, path
        finally:
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)

    def promote(self, name: str, staged: Path) -> Path:
        """Move a complete staged version into versions/ (atomic rename), without making it current."""
        Manifest.read(staged).verify_files(staged)
        for child in staged.iterdir():
            if child.is_file():
                with open(child, "rb") as fh:
                    os.fsync(fh.fileno())
        fsync_dir(staged)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        target = self.version_path(name)
        if target.exists():
            raise PublishError(f"version {name} already exists")
        os.rename(staged, target)
        fsync_dir(self.versions_dir)
        return target

    def set_current(self, name: str) -> None:
        """Point CURRENT at a version: the single atomic step that makes it what services load."""
        path = self.version_path(name)
        if not path.is_dir():
            raise NoVersionError(f"no version {name!r} in {self.root}")
        Manifest.read(path).verify_files(path)
        atomic_write_bytes(self.root / CURRENT_FILE, (name + "\n").encode("utf-8"))
        logger.info("published version %s", name)

    def rollback(self, name: str | None = None) -> str:
        """Point CURRENT at ``name``, or at the newest valid version older than the current one."""
        if name is None:
            current = self.current()
            candidates = [i for i in self.list() if i.manifest is not None and (current is None or i.name < current)]
            if not candidates:
                raise NoVersionError("no earlier version to roll back to")
            name = candidates[-1].name
        self.set_current(name)
        return name

    def gc(self, keep: int = 5) -> list[str]:
        """Delete all but the newest ``keep`` versions; the current one is always kept."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        current = self.current()
        names = self.names()
        doomed = [n for n in names[: max(0, len(names) - keep)] if n != current]
        if not doomed:
            return []
        trash = self.root / STAGING_DIR
        trash.mkdir(parents=True, exist_ok=True)
        moved = []
        for name in doomed:
            # One atomic rename takes the version out of versions/ whole; deleting its files one by one there
            # would leave a half-deleted version behind if the process died midway (seen with kill -9 during gc).
            # What is moved aside is deleted below, or by the next build's clean_staging if we die first.
            target = trash / f"{name}.deleted-{secrets.token_hex(3)}"
            os.rename(self.versions_dir / name, target)
            moved.append(target)
        fsync_dir(self.versions_dir)
        for target in moved:
            shutil.rmtree(target, ignore_errors=True)
        return doomed
