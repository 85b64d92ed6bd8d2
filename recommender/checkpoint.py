"""Embedding checkpoints: vectors a build computed survive the build failing or being killed.

Embedding is nearly all of a first build's time (about 90 minutes per million articles on 2 cores). Without a
checkpoint a build that dies afterwards (a recall floor, a quality gate, a reboot, a kill from cron) loses all
of it, and the next night starts over. Each embedded chunk is written as it finishes, as one atomic segment
(content hashes + vectors); the next build under the same embedding key takes any vector it finds here before
embedding, then the checkpoint is deleted once a version is published. A checkpoint from another embedding
configuration is discarded unread, as is any partial file a kill left behind (only complete, renamed segments
count).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from index import atomic_write_json, atomic_writer

__all__ = ["EmbeddingCheckpoint"]

logger = logging.getLogger(__name__)

KEY_FILE = "key.json"


class EmbeddingCheckpoint:
    """The ``checkpoint/`` folder of an index directory, bound to one embedding key."""

    def __init__(self, root: Path, key: dict[str, Any]) -> None:
        self.path = Path(root) / "checkpoint"
        self.key = key
        self._next = 0

    def load(self) -> dict[str, np.ndarray]:
        """Vectors by content hash from earlier unfinished builds with this key (empty when none)."""
        try:
            saved = json.loads((self.path / KEY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = None
        if saved != self.key:
            self.clear()
            return {}
        found: dict[str, np.ndarray] = {}
        for seg in sorted(self.path.glob("seg-*.npz")):
            try:
                with np.load(seg, allow_pickle=False) as data:
                    hashes, vectors = data["hashes"], data["vectors"]
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("skipping unreadable checkpoint segment %s: %s", seg.name, exc)
                continue
            if len(hashes) != len(vectors):
                continue
            found.update(zip(hashes.tolist(), vectors))
            self._next = max(self._next, int(seg.stem.split("-")[1]) + 1)
        return found

    def save(self, hashes: list[str], vectors: np.ndarray) -> None:
        """Append one segment; the key file goes first so a segment is never read under the wrong key."""
        if not hashes:
            return
        if not (self.path / KEY_FILE).exists():
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path / KEY_FILE, self.key)
        with atomic_writer(self.path / f"seg-{self._next:06d}.npz") as fh:
            np.savez(fh, hashes=np.asarray(hashes, dtype="U32"), vectors=np.asarray(vectors, dtype=np.float32))
        self._next += 1

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._next = 0
