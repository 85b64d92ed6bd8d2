"""Returning freed heap memory to the operating system (glibc ``malloc_trim``)."""

from __future__ import annotations

import ctypes

__all__ = ["TRIM_EVERY", "release_free_memory"]

#: Seconds between returns of freed heap memory to the OS (see :func:`release_free_memory`).
TRIM_EVERY = 30.0
_libc: ctypes.CDLL | None | bool = None


def release_free_memory() -> None:
    """Give memory the allocator holds but no longer uses back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Embedding (live writes, drafts, the log replay at each reload) makes large short-lived allocations in many
    request threads; glibc keeps freed memory in per-thread arenas, so RSS climbed by ~300 MB over a 10-minute soak
    without anything being leaked (tests/chaos/soak.py). Trimming every 30 s takes a few milliseconds."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)
