"""Typed errors of the recommender: the CLI turns them into one line, the service into JSON."""

from __future__ import annotations

import errno
from typing import Any

__all__ = [
    "RecommenderError",
    "FieldError",
    "LoadError",
    "RejectsExceededError",
    "ArticleNotFoundError",
    "ConfigurationError",
    "ValidationFailedError",
    "DiskFullError",
    "LiveWriteError",
    "StorageFullError",
    "DamagedIndexError",
    "NotReadyError",
    "ReloadFailedError",
]


class RecommenderError(Exception):
    """Base class: every error a user can cause or fix. ``code`` is stable for APIs and exit codes."""

    code = "recommender_error"
    exit_code = 1


class FieldError(RecommenderError, ValueError):
    """One field of one record is invalid."""

    code = "invalid_field"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class LoadError(RecommenderError):
    """An input file cannot be read at all (missing, unreadable, unknown format, empty)."""

    code = "load_error"
    exit_code = 2


class RejectsExceededError(RecommenderError):
    """Too many bad rows: publishing would silently lose articles, so the build stops."""

    code = "too_many_rejects"
    exit_code = 3


#: Longest part of an id echoed in a message: ids come from requests, and a message is not a place to mirror
#: kilobytes of a client's input.
ECHO_LIMIT = 120


def echo(value: str, limit: int = ECHO_LIMIT) -> str:
    """``repr`` of a client-supplied string, cut to ``limit`` characters (with a note of the full length)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


class ArticleNotFoundError(RecommenderError, KeyError):
    code = "article_not_found"

    def __init__(self, article_id: str, what: str = "article not found") -> None:
        super().__init__(f"{what}: {echo(article_id)}")
        self.article_id = article_id

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class ConfigurationError(RecommenderError, ValueError):
    """A setting or option is invalid or inconsistent (e.g. a model that does not match the index)."""

    code = "configuration_error"
    exit_code = 2


class ValidationFailedError(RecommenderError):
    """A freshly built version failed a check before publish; nothing was published."""

    code = "validation_failed"
    exit_code = 4

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class DiskFullError(RecommenderError):
    """The disk filled up mid-build; the staged files were removed and the published version is untouched."""

    code = "disk_full"
    exit_code = 6


class LiveWriteError(RecommenderError, OSError):
    """A live change could not be made durable (the write-ahead log could not be written): it was neither
    acknowledged nor applied, and the log holds nothing of it. An OSError too, for callers that catch those."""

    code = "write_failed"

    def __str__(self) -> str:  # OSError would prefix "[Errno N]"; the message already says what happened
        return self.strerror if self.strerror else super().__str__()

    @classmethod
    def of(cls, exc: OSError, path: Any, outcome: str) -> LiveWriteError:
        """The error for a failed write of ``path``: a :class:`StorageFullError` when the device is full or over
        quota; ``outcome`` says what the caller's client must know ("the change was not made")."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return StorageFullError(exc.errno, f"no space left on the device of {path}; {outcome}")
        return LiveWriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}; {outcome}")


class StorageFullError(LiveWriteError):
    """The disk holding the write-ahead log is full (or over quota): free space, then retry the change."""

    code = "insufficient_storage"


class NotReadyError(RecommenderError):
    """No index version is loaded (nothing published yet, or the published one failed to load)."""

    code = "not_ready"


class ReloadFailedError(RecommenderError):
    """The published version could not be loaded; the previous one (if any) is still served."""

    code = "reload_failed"


class DamagedIndexError(RecommenderError):
    """The served version's files hold impossible values (a cosine outside [-1, 1], a candidate position past the
    end): damage the digests did not catch (they are checked at load only when RECOMMENDER_VERIFY_DIGESTS is on)."""

    code = "index_damaged"
    exit_code = 2
