"""The root ``recommender`` command: the command groups, one-line usage errors, and commands other installed
packages add (the HTTP service adds ``serve`` and ``demo`` through the ``recommender.commands`` entry points, so this
package never imports the service)."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import backends, build, calibrate, evaluate, events, index, related
from .common import one_line, setup_logging

__all__ = ["app", "main"]

logger = logging.getLogger(__name__)


class _OneLineErrors(TyperGroup):
    """The root command. Click and typer print a usage error as a usage banner plus a boxed, wrapped message;
    cron mails, log greps and calling scripts need one line, so every usage or option error becomes
    ``error: <message naming the option>`` on stderr with click's exit code (2 for bad input)."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
        except typer.TyperException as exc:  # typer's (vendored) click.ClickException and its subclasses
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `recommender` / `recommender index`: help
                if exc.format_message().strip():  # without rich the help text is the message; with rich it is printed
                    typer.echo(exc.format_message(), err=True)
            else:
                typer.echo(f"error: {one_line(exc.format_message())}", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="recommender",
    cls=_OneLineErrors,
    help="Related-article recommendations for news sites.\n\nExample: recommender demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich would read [brackets] in help text as markup and drop them, and costs ~0.1 s to import.
    rich_markup_mode=None,
)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress lines.")] = False) -> None:
    setup_logging(verbose)


app.command()(build.build)
app.command()(related.related)
app.command()(evaluate.evaluate)
app.command()(calibrate.calibrate)
app.command()(backends.backends)
app.add_typer(index.app, name="index")
app.add_typer(events.app, name="events")


def _add_plugin_commands() -> None:
    """Commands of other installed packages (entry point group ``recommender.commands``: a callable that takes
    the root Typer app and adds commands to it)."""
    for entry in entry_points(group="recommender.commands"):
        try:
            entry.load()(app)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the other commands down
            logger.warning("commands from %s not loaded: %s", entry.value, exc)


_add_plugin_commands()


def main() -> None:
    """Console-script entry point; :class:`_OneLineErrors` turns every usage error into one line."""
    app()
