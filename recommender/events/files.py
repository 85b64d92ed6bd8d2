"""The events folder on disk, for the readers of the log (compaction, evaluation): its segments, what of them has
been compacted, and log lines turned into Arrow columns with their dedup keys.

pyarrow is imported inside the functions that build tables: the service appends without it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from index.persist import atomic_write_json

from ..damage import damaged_copy
from .log import LOG_DIR
from .schema import EVENT_TYPES, event_key

__all__ = [
    "DAMAGED_DIR",
    "STATE_FILE",
    "Columns",
    "DayState",
    "arrow_schema",
    "complete_end",
    "keep_aside",
    "parse_lines",
    "received_days",
    "segments",
]

logger = logging.getLogger(__name__)

STATE_FILE = "_state.json"
DAMAGED_DIR = f"{LOG_DIR}/damaged"
_DAY_DIR = re.compile(r"^received=(\d{4}-\d{2}-\d{2})$")
_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def arrow_schema() -> Any:
    """The columns of every Parquet part (and of what :func:`parse_lines` returns)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("type", pa.string()),
            ("source_id", pa.string()),
            ("item_id", pa.string()),
            ("position", pa.int16()),
            ("request_id", pa.string()),
            ("variant", pa.string()),
            ("visitor", pa.string()),
            ("at", pa.timestamp("ms", tz="UTC")),
            ("event_id", pa.string()),
            ("received_at", pa.timestamp("ms", tz="UTC")),
            # Names the event (recommender.events.schema.event_key): SELECT DISTINCT on it drops resends.
            ("key", pa.int64()),
        ]
    )


def received_days(root: Path) -> list[tuple[str, Path]]:
    """``(day, folder)`` of every ``_log/received=DAY`` folder, oldest first."""
    base = Path(root) / LOG_DIR
    if not base.is_dir():
        return []
    out = [(m.group(1), p) for p in base.iterdir() if p.is_dir() and (m := _DAY_DIR.match(p.name))]
    return sorted(out)


def partitions(root: Path) -> list[tuple[str, Path]]:
    """``(date, folder)`` of every ``date=DATE`` partition, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted((m.group(1), p) for p in root.iterdir() if p.is_dir() and (m := _PARTITION.match(p.name)))


def segments(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.jsonl") if not p.name.startswith((".", "_")))


def complete_end(path: Path) -> tuple[int, int]:
    """``(end, size)``: the offset just after the last complete line, and the file's size. A difference is a torn
    tail: a process killed inside ``write()`` (never acknowledged)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        end = size
        while end > 0:
            start = max(0, end - 65536)
            fh.seek(start)
            block = fh.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1, size
            end = start
    return 0, size


@dataclass
class DayState:
    """``_state.json`` of one received day: bytes of each segment already in Parquet, and the job in progress
    (written before its parts, so that a crash mid-job is redone with exactly the same input)."""

    path: Path
    offsets: dict[str, int] = field(default_factory=dict)
    pending: dict[str, Any] | None = None

    @classmethod
    def load(cls, folder: Path) -> DayState:
        path = folder / STATE_FILE
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            # Written atomically, so this is damage from outside: refuse rather than compact twice.
            raise OSError(f"{path}: unreadable compaction state ({exc}); fix or remove it by hand") from None
        return cls(path, {str(k): int(v) for k, v in data.get("offsets", {}).items()}, data.get("pending"))

    def save(self) -> None:
        atomic_write_json(self.path, {"offsets": self.offsets, "pending": self.pending})


def _ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


@dataclass
class Columns:
    """Events as columns (ms times, 64-bit keys), the damaged lines skipped, in log order."""

    type: list[str] = field(default_factory=list)
    source_id: list[str] = field(default_factory=list)
    item_id: list[str] = field(default_factory=list)
    position: list[int] = field(default_factory=list)
    request_id: list[str] = field(default_factory=list)
    variant: list[str] = field(default_factory=list)
    visitor: list[str] = field(default_factory=list)
    at: list[int] = field(default_factory=list)
    event_id: list[str | None] = field(default_factory=list)
    received_at: list[int] = field(default_factory=list)
    key: list[int] = field(default_factory=list)
    damaged: list[tuple[int, bytes, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.key)

    def add_line(self, offset: int, raw: bytes) -> None:
        try:
            d = orjson.loads(raw)
            kind, position = d["type"], d["position"]
            if kind not in EVENT_TYPES or not isinstance(position, int):
                raise ValueError("not an event")
            at, received = _ms(d["at"]), _ms(d["received_at"])
            values = (d["source_id"], d["item_id"], d["request_id"], d["variant"], d["visitor"])
            if not all(isinstance(v, str) for v in values):
                raise ValueError("not an event")
            event_id = d.get("event_id")
            key = event_key(kind, values[0], values[1], position, values[2], values[3], values[4], at, event_id)
        except (ValueError, KeyError, TypeError) as exc:
            self.damaged.append((offset, raw, f"unreadable event: {exc}"[:200]))
            return
        self.type.append(kind)
        self.source_id.append(values[0])
        self.item_id.append(values[1])
        self.position.append(position)
        self.request_id.append(values[2])
        self.variant.append(values[3])
        self.visitor.append(values[4])
        self.at.append(at)
        self.event_id.append(event_id)
        self.received_at.append(received)
        self.key.append(key)

    def table(self) -> Any:
        import pyarrow as pa

        schema = arrow_schema()
        data = {name: getattr(self, name) for name in schema.names}
        return pa.table({name: pa.array(data[name], type=schema.field(name).type) for name in schema.names})


def parse_lines(data: bytes, base_offset: int = 0, into: Columns | None = None) -> Columns:
    """Complete lines of a segment (``data`` ends with a newline) as columns; unreadable lines are kept in
    ``damaged`` with their offset, never silently dropped."""
    out = into if into is not None else Columns()
    offset = base_offset
    for raw in data.splitlines(keepends=True):
        if raw.strip():
            out.add_line(offset, raw)
        offset += len(raw)
    return out


def read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(end - start)


def iter_log_ranges(root: Path) -> Iterator[tuple[str, Path, int, int]]:
    """``(day, segment, start, end)`` of every log range not yet compacted (complete lines only)."""
    for day, folder in received_days(root):
        state = DayState.load(folder)
        for segment in segments(folder):
            start = state.offsets.get(segment.name, 0)
            end, _ = complete_end(segment)
            if end > start:
                yield day, segment, start, end


def keep_aside(root: Path, segment: Path, offset: int, raw: bytes) -> str | None:
    """Copy damaged bytes to ``_log/damaged/`` (once), so deleting the compacted segment loses nothing."""
    return damaged_copy(Path(root) / DAMAGED_DIR / f"{segment.parent.name}-{segment.stem}-{offset}.bin", raw, "event")
