"""One-time conversion of a model folder's transformer to ONNX and to OpenVINO IR, cached beside each other.

Only the transformer is converted (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``; output the token
embeddings, batch and sequence axes dynamic): pooling and normalisation run in NumPy (``tokens.py``), so every
backend pools the same way. Needs torch and transformers, which the project installs anyway; the converted files
are loaded later without them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .cache import atomic_dir, library_versions, model_dir
from .model import ModelSpec

__all__ = ["INPUT_NAMES", "onnx_int8_model", "onnx_model", "openvino_model"]

logger = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def _version_tag(*libraries: str) -> str:
    versions = library_versions()
    return "-".join(f"{lib}{versions.get(lib)}" for lib in libraries).replace("+", "_")


def _torch_transformer(spec: ModelSpec):
    import torch
    from transformers import AutoModel

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    # Eager attention: the SDPA path may drop an all-ones mask while tracing, baking "no padding" into the graph.
    model = AutoModel.from_pretrained(str(spec.path), local_files_only=True, attn_implementation="eager").eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    # Two rows of different lengths, so the traced graph sees real padding.
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 3231, 102, 0, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    return TokenEmbeddings(model), (ids, mask, torch.zeros_like(ids))


def onnx_model(spec: ModelSpec, cache: Path | None = None) -> Path:
    """The transformer as float32 ONNX (exported once per model, torch and ONNX version)."""
    folder = model_dir(spec, cache) / f"onnx-{_version_tag('torch', 'onnx')}"
    path = folder / "model.onnx"
    if path.exists():
        return path
    import torch

    started = time.perf_counter()
    module, example = _torch_transformer(spec)
    with atomic_dir(folder) as tmp, torch.no_grad():
        axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, "token_embeddings")}
        torch.onnx.export(
            module,
            example,
            str(tmp / "model.onnx"),
            input_names=list(INPUT_NAMES),
            output_names=["token_embeddings"],
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles dynamic axes for BERT
        )
    logger.info("exported %s to ONNX in %.1fs: %s", spec.model_id, time.perf_counter() - started, path)
    return path


def onnx_int8_model(spec: ModelSpec, cache: Path | None = None) -> Path:
    """Dynamic int8 quantisation of :func:`onnx_model` (weights int8, activations quantised per batch)."""
    source = onnx_model(spec, cache)
    folder = source.parent.with_name(source.parent.name + f"-int8-{_version_tag('onnxruntime')}")
    path = folder / "model.onnx"
    if path.exists():
        return path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    started = time.perf_counter()
    with atomic_dir(folder) as tmp:
        logging.disable(logging.WARNING)  # the quantiser logs one root-logger line per tensor
        try:
            quantize_dynamic(str(source), str(tmp / "model.onnx"), weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
    logger.info("quantised %s to int8 in %.1fs", spec.model_id, time.perf_counter() - started)
    return path


def openvino_model(spec: ModelSpec, cache: Path | None = None) -> Path:
    """The transformer as OpenVINO IR (``openvino.convert_model`` from the torch module, float32 weights kept:
    ``save_model`` would halve them to fp16 by default)."""
    folder = model_dir(spec, cache) / f"openvino-{_version_tag('torch', 'openvino')}"
    path = folder / "model.xml"
    if path.exists():
        return path
    import openvino as ov
    import torch

    started = time.perf_counter()
    module, example = _torch_transformer(spec)
    with torch.no_grad():
        converted = ov.convert_model(
            module,
            example_input=dict(zip(INPUT_NAMES, example)),
            input=[(name, ov.PartialShape([-1, -1]), ov.Type.i64) for name in INPUT_NAMES],
        )
    converted.outputs[0].get_tensor().set_names({"token_embeddings"})
    with atomic_dir(folder) as tmp:
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)
    logger.info("converted %s to OpenVINO in %.1fs: %s", spec.model_id, time.perf_counter() - started, path)
    return path
