"""openvino and openvino-bf16: the transformer converted once to OpenVINO IR, run by the OpenVINO CPU plugin.

The precision is set explicitly (``INFERENCE_PRECISION_HINT``): left alone, the plugin picks bf16 on CPUs with AMX
or AVX512-bf16 and f32 elsewhere, and the same backend name would then make different vectors on different machines.
Shapes stay dynamic, so each batch runs at its own padded length.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError
from .model import ModelSpec
from .tokens import Tokens, run_batched

__all__ = ["OpenVinoBackend", "bf16_supported"]


def bf16_supported() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoBackend:
    def __init__(
        self, spec: ModelSpec, *, batch_size: int, bf16: bool = False, threads: int = 0, cache: Path | None = None
    ) -> None:
        import openvino as ov

        from .export import openvino_model

        self.name = "openvino-bf16" if bf16 else "openvino"
        if bf16 and not bf16_supported():
            raise ConfigurationError("backend openvino-bf16: this CPU has no bf16 support (OpenVINO CPU plugin)")
        self.spec = spec
        self.dimension = spec.dimension
        self.batch_size = batch_size
        self.path = openvino_model(spec, cache)
        core = ov.Core()
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
            # One synchronous request at a time (a build's batches, a draft): all cores on one request.
            "PERFORMANCE_HINT": "LATENCY",
            # No CACHE_DIR: OpenVINO 2026.4 names the compiled blob without the precision hint, so an openvino-bf16
            # compile loaded the f32 blob and then returned NaN or crashed the process (seen here); compiling this
            # model takes 0.2 s, which the blob would cut to 0.1 s.
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(str(self.path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.tokens = Tokens(spec)
        self._version = ov.get_version()
        self._threads = threads

    def info(self) -> dict:
        return {
            "library": f"openvino {self._version}",
            "precision": self.precision,
            "threads": self._threads or "default",
            "model_file": str(self.path),
        }

    def _infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        result = self.request.infer(feeds)
        return result[self.compiled.output(0)]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return run_batched(self.tokens, self.spec, texts, self.batch_size, self._infer)
