"""float32 and bf16: sentence-transformers on torch, the reference every other backend is measured against."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigurationError

__all__ = ["TorchBackend"]


class TorchBackend:
    """``float32`` is exact; ``bf16`` runs under CPU autocast (AMX / AVX512-bf16 where the CPU has them)."""

    def __init__(
        self, name: str, load_from: str, model: str, *, batch_size: int, max_seq_length: int | None, device: str = "cpu"
    ) -> None:
        if name not in ("float32", "bf16"):
            raise ValueError(f"torch backend is float32 or bf16, got {name!r}")
        self.name = name
        self.batch_size = batch_size
        from sentence_transformers import SentenceTransformer

        try:  # the weight-loading progress bar is noise on every start and in cron mail
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
        try:
            self.model = SentenceTransformer(load_from, device=device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - ST raises OSError, ValueError or hub errors depending on the failure
            raise ConfigurationError(f"cannot load model {model!r} offline: {str(exc).splitlines()[0]}") from None
        if max_seq_length:
            self.model.max_seq_length = min(max_seq_length, self.model.max_seq_length or max_seq_length)
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else None
        self.dimension = int(dim or self.model.get_sentence_embedding_dimension())

    def _precision(self) -> contextlib.AbstractContextManager:
        if self.name == "bf16":
            import torch

            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def info(self) -> dict:
        import torch

        return {"library": f"torch {torch.__version__}", "precision": self.name, "threads": torch.get_num_threads()}

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        import torch

        with torch.inference_mode(), self._precision():
            # sentence-transformers sorts by length before batching and pads each batch to its longest text.
            vectors = self.model.encode(
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
