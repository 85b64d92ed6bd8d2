"""``recommender backends``: the embedding backends on this machine, measured, and the one ``auto`` picks."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from .common import JsonOpt, run, setting_help, settings_from

__all__ = ["backends"]


def backends(
    model: Annotated[
        Optional[str], typer.Option(metavar="NAME|DIR", help=setting_help("Model name or local folder.", "model"))
    ] = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Measure again instead of reading the cached choice.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Time every embedding backend on a fixed sample and check its top-10 neighbours against float32; auto
    uses the fastest that agrees on at least 99% (measured once per machine and model, then cached).

    Example: recommender backends --refresh
    """
    settings = settings_from(model=model)

    def go():
        from ..backends.select import backend_selection

        return backend_selection(settings.model, settings.max_seq_length, refresh=refresh)

    selection = run(go)
    from ..backends.select import format_table, table_rows

    if as_json:
        typer.echo(
            json.dumps(
                {"choice": selection.choice, "machine": selection.key.get("machine"), "rows": table_rows(selection)},
                indent=2,
                default=str,
            )
        )
    else:
        typer.echo(format_table(selection))
