"""Damaged bytes of an append-only log (the change log, the event log), kept aside for inspection.

A log reader skips a line it cannot parse; the bytes must outlive the compaction or rewrite that would drop them,
so an operator can see what was lost and why. Written once per name (a reader that meets the same damage again
writes nothing), atomically, and never raising: failing to keep a copy must not stop the reader.
"""

from __future__ import annotations

import logging
from pathlib import Path

from index.persist import atomic_write_bytes

__all__ = ["damaged_copy"]

logger = logging.getLogger(__name__)


def damaged_copy(target: Path, raw: bytes, what: str) -> str | None:
    """Write ``raw`` to ``target`` unless it exists; its path, or None (logged) when it could not be written."""
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, raw)
        return str(target)
    except OSError as exc:
        logger.error("could not keep damaged %s bytes aside: %s", what, exc)
        return None
