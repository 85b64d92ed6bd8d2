"""One loaded model per configuration per process.

Loading the model takes seconds and hundreds of megabytes, so a process loads it once: a service for every draft,
live write and reload, a CLI command for its build and evaluation, a test session for all its tests. The first
caller loads it (others asking meanwhile wait for that load, never start a second one).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .embedding import Embedder
    from .settings import Settings

__all__ = ["clear_embedders", "embedder_for", "shared_embedder"]

_loaded: dict[tuple[str, str, int, int | None], Embedder] = {}
_lock = threading.Lock()


def shared_embedder(
    model: str | None = None, *, backend: str = "float32", batch_size: int = 64, max_seq_length: int | None = 256
) -> Embedder:
    """The process's Embedder for this configuration, loaded on first use."""
    from .embedding import DEFAULT_MODEL, Embedder

    key = (model or DEFAULT_MODEL, backend, batch_size, max_seq_length)
    with _lock:
        embedder = _loaded.get(key)
        if embedder is None:
            embedder = _loaded[key] = Embedder(
                key[0], backend=backend, batch_size=batch_size, max_seq_length=max_seq_length
            )
        return embedder


def embedder_for(settings: Settings, *, batch_size: int | None = None) -> Embedder:
    """The shared Embedder the settings ask for (``batch_size``: a caller's own, e.g. the service's smaller one)."""
    return shared_embedder(
        settings.model,
        backend=settings.embedding_backend,
        batch_size=batch_size or settings.batch_size,
        max_seq_length=settings.max_seq_length,
    )


def clear_embedders() -> None:
    """Forget every loaded model (memory is freed once no caller holds one)."""
    with _lock:
        _loaded.clear()
