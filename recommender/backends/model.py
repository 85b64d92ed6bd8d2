"""What a backend needs to know about a sentence-transformers model folder: its modules, pooling and lengths.

The non-torch backends run only the transformer: tokenization, pooling and normalisation are done here, exactly as
the folder's ``modules.json`` and ``1_Pooling/config.json`` tell sentence-transformers to do them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError

__all__ = ["POOLING_MODES", "ModelSpec", "read_model_spec"]

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
#: pooling_mode_* flags of a Pooling config that the exported backends reproduce
POOLING_MODES = ("mean_tokens", "cls_token", "max_tokens", "mean_sqrt_len_tokens")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class ModelSpec:
    """A model folder as the exported backends see it. ``exportable`` is False (with ``why_not``) for folders whose
    module stack they do not reproduce (a Dense layer, weighted pooling...): only the torch backends serve those."""

    path: Path
    model_id: str
    max_seq_length: int
    pooling: str
    normalize: bool
    dimension: int
    fingerprint: str
    exportable: bool
    why_not: str = ""


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"model folder: cannot read {path.name}: {exc}") from None


def _fingerprint(folder: Path) -> str:
    """Changes when the weights or configuration change; cheap (no 90 MB read): name, size and mtime of the
    weights, and the bytes of the small JSON files."""
    h = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        p = folder / name
        if name in _WEIGHTS:
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
        elif name.endswith(".json") or name == "vocab.txt":
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def read_model_spec(path: str | Path, model_id: str, max_seq_length: int | None) -> ModelSpec:
    """``max_seq_length`` caps the folder's own (``sentence_bert_config.json``), as the torch path does."""
    folder = Path(path)
    if not folder.is_dir():  # a hub name, loadable by torch from a local hub cache only
        return ModelSpec(
            folder,
            model_id,
            int(max_seq_length or 512),
            "mean_tokens",
            True,
            0,
            "",
            False,
            f"{folder} is not a local model folder",
        )
    config = _load_json(folder / "config.json") if (folder / "config.json").exists() else {}
    st_config = (
        _load_json(folder / "sentence_bert_config.json") if (folder / "sentence_bert_config.json").exists() else {}
    )
    own = st_config.get("max_seq_length") or config.get("max_position_embeddings") or 512
    length = min(int(max_seq_length), int(own)) if max_seq_length else int(own)

    why_not = ""
    pooling, normalize, dimension = "mean_tokens", False, int(config.get("hidden_size") or 0)
    modules = _load_json(folder / "modules.json") if (folder / "modules.json").exists() else []
    types = [m.get("type", "") for m in modules]
    if not modules:
        why_not = "no modules.json"
    elif (
        types[0] != _TRANSFORMER
        or _POOLING not in types
        or any(t not in (_TRANSFORMER, _POOLING, _NORMALIZE) for t in types)
    ):
        why_not = f"module stack {[t.rsplit('.', 1)[-1] for t in types]} (exported backends run Transformer, Pooling, Normalize)"
    else:
        pool_dir = next(m.get("path", "") for m in modules if m.get("type") == _POOLING)
        pool_cfg = _load_json(folder / pool_dir / "config.json")
        modes = [m for m in POOLING_MODES if pool_cfg.get(f"pooling_mode_{m}")]
        others = [
            k
            for k, v in pool_cfg.items()
            if k.startswith("pooling_mode_") and v and k[len("pooling_mode_") :] not in POOLING_MODES
        ]
        if len(modes) != 1 or others:
            why_not = f"pooling {modes + others} (exported backends do one of {', '.join(POOLING_MODES)})"
        else:
            pooling = modes[0]
        dimension = int(pool_cfg.get("word_embedding_dimension") or dimension)
        normalize = _NORMALIZE in types
    return ModelSpec(
        path=folder,
        model_id=model_id,
        max_seq_length=length,
        pooling=pooling,
        normalize=normalize,
        dimension=dimension,
        fingerprint=_fingerprint(folder),
        exportable=not why_not,
        why_not=why_not,
    )
