"""``recommender index ...``: list, inspect, roll back and clean up published versions."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any, Optional

import typer

from .common import IndexDirOpt, JsonOpt, fail, run, settings_from

__all__ = ["app"]

app = typer.Typer(
    help="Inspect and manage published index versions.\n\nExample: recommender index list --index-dir DIR",
    no_args_is_help=True,
    # Plain help: rich would read [brackets] in help text as markup and drop them, and costs ~0.1 s to import.
    rich_markup_mode=None,
)


def _info_dict(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "published": info.current,
        "path": str(info.path),
        "error": info.error,
        "manifest": asdict(info.manifest) if info.manifest else None,
    }


@app.command("list")
def index_list(index_dir: IndexDirOpt = None, as_json: JsonOpt = False) -> None:
    """List versions, newest last; * marks the published one.

    Example: recommender index list --index-dir /srv/related/index
    """
    from index import IndexDirectory

    settings = settings_from(index_dir=index_dir)
    infos = run(lambda: IndexDirectory(settings.index_dir).list())
    if as_json:
        typer.echo(json.dumps([_info_dict(i) for i in infos], indent=2))
        return
    if not infos:
        fail(f"no versions in {settings.index_dir}; run `recommender build` first", 2)
    for info in infos:
        m = info.manifest
        detail = (
            f"{m.count} articles, {m.index_type}, {m.model}, built {m.created_at}" if m else f"BROKEN: {info.error}"
        )
        typer.echo(f"{'*' if info.current else ' '} {info.name}  {detail}")


@app.command("info")
def index_info(
    version: Annotated[
        Optional[str], typer.Argument(metavar="VERSION", help="Version name (default: the published one).")
    ] = None,
    index_dir: IndexDirOpt = None,
) -> None:
    """Show one version's manifest and build report as JSON ("published" says whether CURRENT names it).

    Example: recommender index info --index-dir /srv/related/index
    """
    from index import IndexDirectory

    from ..version_files import read_build_report

    settings = settings_from(index_dir=index_dir)
    info = run(lambda: IndexDirectory(settings.index_dir).info(version))
    out = _info_dict(info)
    report = read_build_report(info.path)
    if report is not None:
        # Saved in the version before it was published: whether it is published now is what CURRENT says.
        out["build_report"] = {**report, "published": info.current}
    typer.echo(json.dumps(out, indent=2))


@app.command("rollback")
def index_rollback(
    version: Annotated[
        Optional[str],
        typer.Argument(metavar="VERSION", help="Version to publish (default: the one before the current)."),
    ] = None,
    index_dir: IndexDirOpt = None,
) -> None:
    """Publish an earlier version again (services pick it up on their next poll or reload).

    Example: recommender index rollback --index-dir /srv/related/index
    """
    from index import IndexDirectory

    settings = settings_from(index_dir=index_dir)
    name = run(lambda: IndexDirectory(settings.index_dir).rollback(version))
    typer.echo(f"published {name}")


@app.command("gc")
def index_gc(
    index_dir: IndexDirOpt = None,
    keep: Annotated[
        Optional[int],
        typer.Option(metavar="N", min=1, help="Versions to keep (default: 5; env RECOMMENDER_KEEP_VERSIONS)."),
    ] = None,
) -> None:
    """Delete old versions, keeping the newest N and always the published one.

    Example: recommender index gc --index-dir /srv/related/index --keep 3
    """
    from index import IndexDirectory

    settings = settings_from(index_dir=index_dir, keep_versions=keep)
    directory = IndexDirectory(settings.index_dir)

    def go():
        with directory.lock():
            return directory.gc(settings.keep_versions)

    removed = run(go)
    typer.echo(f"removed {len(removed)} version(s)" + (f": {', '.join(removed)}" if removed else ""))
