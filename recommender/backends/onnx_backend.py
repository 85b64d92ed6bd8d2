"""onnx and onnx-int8: the transformer on ONNX Runtime's CPU provider with all graph optimisations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .model import ModelSpec
from .tokens import Tokens, run_batched

__all__ = ["OnnxBackend"]


class OnnxBackend:
    """``int8``: dynamic quantisation (int8 weights, activations quantised per batch); float32 otherwise."""

    def __init__(
        self, spec: ModelSpec, *, batch_size: int, int8: bool = False, threads: int = 0, cache: Path | None = None
    ) -> None:
        import onnxruntime as ort

        from .export import onnx_int8_model, onnx_model

        self.name = "onnx-int8" if int8 else "onnx"
        self.spec = spec
        self.dimension = spec.dimension
        self.batch_size = batch_size
        self.path = onnx_int8_model(spec, cache) if int8 else onnx_model(spec, cache)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, one per physical core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.tokens = Tokens(spec)
        self._version = ort.__version__
        self._threads = threads

    def info(self) -> dict:
        return {
            "library": f"onnxruntime {self._version}",
            "precision": "int8-dynamic" if "int8" in self.name else "f32",
            "threads": self._threads or "default",
            "model_file": str(self.path),
        }

    def _infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return run_batched(self.tokens, self.spec, texts, self.batch_size, self._infer)
