"""Crash-safe file writes: temp file in the same folder, fsync, rename, fsync the folder."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

__all__ = ["append_whole", "atomic_writer", "atomic_write_bytes", "atomic_write_json", "atomic_save_npy", "fsync_dir"]

logger = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    """Make a rename or create inside ``path`` durable (POSIX needs the folder itself synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only if the block finishes; readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")


class _ChunkedWriter:
    """Hides the real file from numpy: ``ndarray.tofile`` reports a full disk as a bare OSError without
    errno, while chunked ``write`` calls raise ENOSPC that callers can recognise."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, data: bytes) -> int:
        return self._fh.write(data)


def atomic_save_npy(path: Path, array: Any) -> None:
    import numpy as np

    with atomic_writer(path) as fh:
        np.save(_ChunkedWriter(fh), np.ascontiguousarray(array))  # type: ignore[arg-type]


def append_whole(fd: int, data: bytes, start: int, path: Path) -> None:
    """Append ``data`` to ``fd`` (opened with O_APPEND, ``start`` bytes long) and fsync, or leave the file as it
    was: a failed or short write (a full disk) is cut back to ``start`` before its OSError is raised again, so a
    log never keeps part of an entry nobody was told was stored. ``path`` names the file in the log line of a
    cut-back that itself fails."""
    try:
        view = memoryview(data)
        while view:  # os.write may write part of the data (a nearly full disk) and return
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, start)
            os.fsync(fd)
        except OSError:
            logger.exception("%s: could not cut back a failed append", path)
        raise
