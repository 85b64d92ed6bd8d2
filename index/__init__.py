"""FAISS vector store: build, persist, publish, load and search vectors by stable string id.

Knows nothing about text or models: a caller's model identifier is an opaque manifest field.
"""

from .errors import LockedError, ManifestError, ManifestMismatchError, NoVersionError, PublishError, StoreError
from .exact import brute_force_search, recall_at_k
from .manifest import MANIFEST_FILE, Manifest
from .persist import atomic_save_npy, atomic_write_bytes, atomic_write_json, atomic_writer, fsync_dir
from .publish import BuildLock, IndexDirectory, VersionInfo
from .store import INDEX_TYPES, IndexSpec, VectorStore, measure_recall, tune_recall

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
