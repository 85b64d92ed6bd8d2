"""What every command shares: settings from the environment and flags, one-line errors, help text that shows
each option's default and environment variable, and logging.

Imports here are light on purpose (no numpy, torch or scikit-learn): ``recommender --help`` and the commands'
argument parsing must not wait for them. Each command imports what it needs when it runs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, NoReturn, Optional

import typer

from ..errors import RecommenderError
from ..settings_errors import ENV_PREFIX

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "ENV_PREFIX",
    "EXIT_CODES",
    "GradingOpt",
    "IndexDirOpt",
    "JsonOpt",
    "LabelFieldOpt",
    "QrelsOpt",
    "SessionsOpt",
    "fail",
    "one_line",
    "run",
    "setting_help",
    "settings_from",
    "setup_logging",
]

#: Documented exit codes (README, Operations).
EXIT_CODES = {
    0: "success",
    1: "error",
    2: "bad input or configuration",
    3: "too many rejected rows",
    4: "validation or quality gate failed",
    5: "another build holds the lock",
    6: "disk full",
}


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings_defaults() -> dict[str, Any]:
    """Defaults and descriptions of the settings, read from the settings class without building an instance."""
    from ..settings import Settings

    return {name: field for name, field in Settings.model_fields.items()}


def setting_help(text: str, setting: str, *, default: Any = None) -> str:
    """Help for a flag backed by a setting: ``text (default: X; env RECOMMENDER_NAME)``. Parentheses, not
    brackets: the help renderer treats ``[...]`` as markup and drops it."""
    field = _settings_defaults()[setting]
    value = default if default is not None else field.default
    if value is None and field.default_factory is not None:
        value = field.default_factory()
    shown = "unset" if value is None or value == [] else value
    return f"{text} (default: {shown}; env {ENV_PREFIX}{setting.upper()})"


IndexDirOpt = Annotated[
    Optional[Path],
    typer.Option("--index-dir", metavar="DIR", help=setting_help("Index folder.", "index_dir"), show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
# Ground truth (evaluate, calibrate): exactly one of the three; the commands check that.
QrelsOpt = Annotated[
    Optional[Path],
    typer.Option(metavar="FILE", help="Ground truth: a TSV (query_id, doc_id, grade, with header) or TREC qrels."),
]
LabelFieldOpt = Annotated[
    Optional[str], typer.Option(metavar="NAME", help="Ground truth from an article field, e.g. story_id or topics.")
]
GradingOpt = Annotated[str, typer.Option(metavar="MODE", help="For list label fields: exact, jaccard or any.")]
SessionsOpt = Annotated[
    Optional[Path], typer.Option(metavar="FILE", help="Ground truth from reading logs (sessions.jsonl).")
]


def settings_from(**flags: Any) -> Settings:
    """Environment first, then the flags given; a bad value of either is one ``error:`` line and exit 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ..settings import Settings, settings_error_message

    try:
        base = Settings()
    except ValidationError as exc:
        fail(settings_error_message(exc, from_env=True), 2)
    except SettingsError as exc:  # e.g. a list-valued variable that is not JSON
        fail(one_line(f"{exc} (check the {ENV_PREFIX}* environment variables)"), 2)
    try:
        settings = base.overridden(**flags)
    except ValidationError as exc:
        fail(settings_error_message(exc, from_env=False), 2)
    if flags.get("index_dir") is not None:
        label = "--index-dir"
    else:
        label = f"{ENV_PREFIX}INDEX_DIR" if f"{ENV_PREFIX}INDEX_DIR" in os.environ else "index folder"
    check_index_dir(Path(settings.index_dir), label)
    return settings


def check_index_dir(path: Path, label: str) -> None:
    """A file where the index folder (or one of its parents) should be would otherwise surface later as a raw
    ``[Errno 20] Not a directory`` or a misleading ``[Errno 17] File exists``."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                detail = "" if candidate == path else f" ({candidate} is a file)"
                fail(f"{label} {path} is not a folder{detail}", 2)
            return


def run(fn: Callable[[], Any]) -> Any:
    """Call the library; its typed errors become one ``error:`` line and their exit code."""
    from index import LockedError, StoreError

    try:
        return fn()
    except RecommenderError as exc:
        fail(one_line(str(exc)), exc.exit_code)
    except LockedError as exc:
        fail(one_line(str(exc)), 5)
    except StoreError as exc:
        fail(one_line(str(exc)), 2)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except OSError as exc:  # I/O the library could not attribute (permissions, network filesystems)
        fail(one_line(str(exc)), 1)


class _Message(logging.Formatter):
    """Warnings look like errors do: ``warning: <message>``, one line, no timestamp; with ``-v`` the progress
    lines keep their time and origin."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.WARNING and not self.verbose:
            return f"{record.levelname.lower()}: {one_line(record.getMessage())}"
        return super().format(record)


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_Message(verbose))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("faiss.loader", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
