"""Where converted models and backend measurements live, and what makes a cached one stale.

``$XDG_CACHE_HOME/related-articles`` (else ``~/.cache/related-articles``): ``models/<model>-<fingerprint>/`` holds
each model's ONNX and OpenVINO conversions, ``backend-selection/`` the measurements behind ``auto``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from index.persist import fsync_dir

from .model import ModelSpec

__all__ = ["CPU_FLAGS", "atomic_dir", "cache_root", "library_versions", "machine", "model_dir"]

#: CPU features that change which backend is fastest; a hypervisor's generic model name ("Intel Xeon Processor")
#: hides whether AMX is there, so the key carries them too
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "avx_vnni")
_LIBRARIES = ("torch", "sentence-transformers", "transformers", "tokenizers", "onnxruntime", "onnx", "openvino")


def cache_root(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "related-articles"


def model_dir(spec: ModelSpec, root: str | Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.model_id)[:80]
    return cache_root(root) / "models" / f"{safe}-{spec.fingerprint}"


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
                if name and flags and key == "":
                    break
    except OSError:
        pass
    return name, sorted(f for f in CPU_FLAGS if f in flags)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def machine() -> dict[str, object]:
    """CPU model, the CPU features that matter and the cores this process may use."""
    name, flags = _cpu_model_and_flags()
    return {"cpu": name, "cpu_flags": flags, "cores": _cores(), "arch": platform.machine()}


def library_versions() -> dict[str, str]:
    """Installed versions (None when absent): an upgrade can change both speed and vectors."""
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` that becomes ``target`` (one rename) only when the block finishes.
    Two processes converting at once: the first rename wins and the second one's work is dropped."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        for p in tmp.rglob("*"):
            if p.is_file():
                with open(p, "rb+") as fh:
                    os.fsync(fh.fileno())
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():
                raise
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
