"""Embedding backends: one small module each, behind ``load_backend``; ``select.py`` measures them for ``auto``.

Every backend turns texts into L2-normalised float32 vectors of the model's dimension, padding each batch only to
its longest text. torch (``float32``, ``bf16``) runs any sentence-transformers folder; the exported backends
(``onnx``, ``onnx-int8``, ``openvino``, ``openvino-bf16``) run folders made of Transformer, Pooling and Normalize
modules, with the folder's own tokenizer and pooling.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ConfigurationError
from .model import ModelSpec, read_model_spec

__all__ = [
    "BACKEND_NAMES",
    "EXTRAS",
    "TORCH_BACKENDS",
    "Backend",
    "install_hint",
    "load_backend",
    "threads",
    "unavailable",
]

TORCH_BACKENDS = ("float32", "bf16")
BACKEND_NAMES = (*TORCH_BACKENDS, "onnx", "onnx-int8", "openvino", "openvino-bf16")
#: backend -> (pyproject extra, modules it imports)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "onnx": ("onnx", ("onnxruntime", "onnx")),
    "onnx-int8": ("onnx", ("onnxruntime", "onnx")),
    "openvino": ("openvino", ("openvino",)),
    "openvino-bf16": ("openvino", ("openvino",)),
}


class Backend(Protocol):
    name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def info(self) -> dict: ...


def install_hint(name: str) -> str:
    extra = EXTRAS[name][0]
    return f"pip install '.[{extra}]'"


def _installed(module: str) -> bool:
    if module in sys.modules:  # None there means "blocked" (how tests simulate a missing package)
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def unavailable(name: str, spec: ModelSpec | None = None) -> str | None:
    """Why ``name`` cannot run here (not installed, model not exportable, CPU lacks the precision), or None."""
    if name in TORCH_BACKENDS:
        return None
    if name not in EXTRAS:
        return f"unknown backend {name!r}"
    missing = [m for m in EXTRAS[name][1] if not _installed(m)]
    if missing:
        return f"{', '.join(missing)} not installed: {install_hint(name)}"
    if spec is not None and not spec.exportable:
        return f"model {spec.model_id!r} not supported: {spec.why_not}"
    if name == "openvino-bf16":
        from .openvino_backend import bf16_supported

        if not bf16_supported():
            return "this CPU has no bf16 support (OpenVINO CPU plugin)"
    return None


def threads() -> int:
    """Threads for ONNX Runtime and OpenVINO, the same torch uses: what torch was told where it is loaded (a Ray
    actor sets 1 per core), else OMP_NUM_THREADS (which torch would read), else every core this process may use."""
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def load_backend(
    name: str,
    load_from: str,
    model_id: str,
    *,
    batch_size: int,
    max_seq_length: int | None,
    device: str = "cpu",
    cache: str | Path | None = None,
    spec: ModelSpec | None = None,
) -> Backend:
    """A ready backend. An exported backend that is not installed raises ConfigurationError with the pip command."""
    if name in TORCH_BACKENDS:
        from .torch_backend import TorchBackend

        return TorchBackend(
            name, load_from, model_id, batch_size=batch_size, max_seq_length=max_seq_length, device=device
        )
    if name not in EXTRAS:
        raise ConfigurationError(f"embedding backend must be one of auto, {', '.join(BACKEND_NAMES)}, got {name!r}")
    if device != "cpu":
        raise ConfigurationError(f"backend {name} runs on the CPU only, got device {device!r}")
    spec = spec or read_model_spec(load_from, model_id, max_seq_length)
    reason = unavailable(name, spec)
    if reason:
        raise ConfigurationError(f"embedding backend {name}: {reason}")
    cache_path = Path(cache) if cache is not None else None
    if name.startswith("onnx"):
        from .onnx_backend import OnnxBackend

        return OnnxBackend(spec, batch_size=batch_size, int8=name == "onnx-int8", threads=threads(), cache=cache_path)
    from .openvino_backend import OpenVinoBackend

    return OpenVinoBackend(
        spec, batch_size=batch_size, bf16=name == "openvino-bf16", threads=threads(), cache=cache_path
    )
