"""The response cache and ETags: answers keyed by what they were computed on, so no entry outlives its data.

Keys start with the snapshot's state (version and change-log position): any live change or reload moves the state,
so a stale entry can never be found again; the cache is also cleared then, to free the memory at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

__all__ = ["RelatedResult", "ResponseCache", "etag"]


def etag(*parts: Any) -> str:
    """A strong ETag for a response computed from ``parts`` (the same parts give the same tag, across restarts)."""
    digest = hashlib.blake2b(repr(parts).encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
    return f'"{digest}"'


@dataclass(frozen=True)
class RelatedResult:
    payload: dict[str, Any]
    etag: str
    cached: bool
    #: the snapshot state (version and log position) the payload was computed on
    state: str = ""


class ResponseCache:
    """A thread-safe LRU of JSON-ready payloads. Size 0 disables it (every lookup is a miss)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, *, count_miss: bool = True) -> Any | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += count_miss
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
