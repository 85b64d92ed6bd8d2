"""Distributed embedding on Ray (an optional extra: ``pip install .[distributed]``).

Ray Data batch inference: the texts become a dataset, an actor pool loads the model once per worker and
embeds batches; results come back in input order. The same :class:`~recommender.embedding.Embedder`
runs inside each actor, so vectors match the local engine's (cosine >= 0.999, tested).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from .errors import ConfigurationError

__all__ = ["ray_embed"]

logger = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigurationError('--engine ray needs Ray: pip install ".[distributed]"') from None
    return ray


class _EmbedActor:
    """One per Ray worker: the model is loaded once, then reused for every batch the pool hands it."""

    def __init__(self, model: str, backend: str, batch_size: int, max_seq_length: int) -> None:
        import torch

        torch.set_num_threads(1)  # one actor per core: threads would only fight each other
        from .embedding import Embedder

        self.embedder = Embedder(model, backend=backend, batch_size=batch_size, max_seq_length=max_seq_length)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors = self.embedder.encode([str(t) for t in batch["text"]])
        return {"row": batch["row"], "vector": vectors}


def ray_embed(
    texts: Sequence[str],
    *,
    model: str,
    backend: str,
    batch_size: int,
    max_seq_length: int,
    address: str | None = None,
    workers: int | None = None,
    rows_per_task: int = 512,
) -> np.ndarray:
    """Embed ``texts`` on a Ray cluster (``address``: ``auto``, ``ray://host:10001``; None starts a local one)."""
    ray = _ray()
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif workers:
            kwargs["num_cpus"] = workers
        ray.init(**kwargs)
        started_here = True
    try:
        pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # At least two blocks per worker so every actor gets work, more for big inputs to balance the pool.
        blocks = max(1, min(len(texts), max(2 * pool, len(texts) // rows_per_task)))
        per_batch = max(1, min(rows_per_task, -(-len(texts) // blocks)))
        ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=blocks)
        out = ds.map_batches(
            _EmbedActor,
            fn_constructor_kwargs={
                "model": model,
                "backend": backend,
                "batch_size": batch_size,
                "max_seq_length": max_seq_length,
            },
            batch_size=per_batch,
            batch_format="numpy",
            concurrency=pool,
            num_cpus=1,
        )
        vectors: np.ndarray | None = None
        for batch in out.iter_batches(batch_size=4096, batch_format="numpy"):
            if vectors is None:
                vectors = np.zeros((len(texts), batch["vector"].shape[1]), dtype=np.float32)
            vectors[batch["row"]] = batch["vector"]
        if vectors is None:
            raise ConfigurationError("Ray returned no vectors")
        logger.info("embedded %d texts on Ray with %d workers", len(texts), pool)
        return vectors
    finally:
        if started_here:
            ray.shutdown()
