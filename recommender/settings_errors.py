"""One line for settings that failed validation, naming the environment variable or the CLI flag (and never
echoing the admin token): what the CLI and the service's entry point print instead of pydantic's report."""

from __future__ import annotations

from typing import Any

__all__ = ["ENV_PREFIX", "FLAG_OF_FIELD", "settings_error_message"]

ENV_PREFIX = "RECOMMENDER_"
#: Settings fields whose CLI flag is not ``--field-name``.
FLAG_OF_FIELD = {"embedding_backend": "--backend", "keep_versions": "--keep"}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def settings_error_message(exc: Any, *, from_env: bool = True) -> str:
    """pydantic's multi-line report (with a documentation URL) as one line naming the env var or flag."""
    errors = exc.errors()
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())] or ["?"]
    name = (
        ENV_PREFIX + "__".join(loc).upper() if from_env else FLAG_OF_FIELD.get(loc[0], "--" + loc[0].replace("_", "-"))
    )
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    value = first.get("input")
    secret = loc[0] == "admin_token"  # never echo a secret, not even a wrong one
    shown = (
        f"{name}={value!r}"
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and not secret
        else name
    )
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return _one_line(f"{shown}: {message}{more}")
