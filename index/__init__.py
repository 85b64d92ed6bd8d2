"""FAISS vector store: build, persist, publish, load and search vectors by stable string id.

Knows nothing about text or models: a caller's model identifier is an opaque manifest field.
"""

from typing import Any

from .errors import LockedError, ManifestError, ManifestMismatchError, NoVersionError, PublishError, StoreError
from .manifest import MANIFEST_FILE, Manifest
from .persist import atomic_save_npy, atomic_write_bytes, atomic_write_json, atomic_writer, fsync_dir
from .publish import BuildLock, IndexDirectory, VersionInfo

#: Names whose modules import FAISS or NumPy, loaded on first use: publishing, manifests and atomic writes
#: (what the CLI's fast commands need) do not pay for them.
_LAZY = {
    "INDEX_TYPES": "store",
    "IndexSpec": "store",
    "VectorStore": "store",
    "measure_recall": "store",
    "tune_recall": "store",
    "brute_force_search": "exact",
    "recall_at_k": "exact",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BuildLock",
    "INDEX_TYPES",
    "IndexDirectory",
    "IndexSpec",
    "LockedError",
    "MANIFEST_FILE",
    "Manifest",
    "ManifestError",
    "ManifestMismatchError",
    "NoVersionError",
    "PublishError",
    "StoreError",
    "VectorStore",
    "VersionInfo",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_writer",
    "brute_force_search",
    "fsync_dir",
    "measure_recall",
    "tune_recall",
    "recall_at_k",
]
