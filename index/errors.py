"""Typed errors of the vector store, independent of any text model."""

from __future__ import annotations

__all__ = ["StoreError", "ManifestError", "ManifestMismatchError", "PublishError", "LockedError", "NoVersionError"]


class StoreError(Exception):
    """Base class for index/ errors."""

    code = "index_error"


class ManifestError(StoreError):
    """A manifest is missing, unreadable or incomplete: the version cannot be trusted."""

    code = "manifest_invalid"


class ManifestMismatchError(StoreError):
    """The index was built for another model or dimension than the caller expects."""

    code = "manifest_mismatch"


class PublishError(StoreError):
    code = "publish_error"


class LockedError(StoreError):
    """Another build holds the index directory's lock."""

    code = "build_locked"


class NoVersionError(StoreError):
    """Nothing is published yet (or the requested version does not exist)."""

    code = "no_version"
