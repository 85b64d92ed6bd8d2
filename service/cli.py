"""The ``serve`` and ``demo`` commands, added to the ``recommender`` command by this package (entry point group
``recommender.commands``), so that the library's CLI never imports the service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from recommender.cli.common import IndexDirOpt, run, setting_help, settings_from

__all__ = ["demo", "register", "serve"]


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(demo)


HostOpt = Annotated[Optional[str], typer.Option(metavar="HOST", help=setting_help("Bind address.", "host"))]
PortOpt = Annotated[Optional[int], typer.Option(metavar="PORT", help=setting_help("Port.", "port"))]


def serve(index_dir: IndexDirOpt = None, host: HostOpt = None, port: PortOpt = None) -> None:
    """Serve the HTTP API and the demo page for the published index.

    Admin routes need RECOMMENDER_ADMIN_TOKEN set.

    Example: recommender serve --index-dir /srv/related/index --port 8000
    """
    settings = settings_from(index_dir=index_dir, host=host, port=port)
    from .server import exit_now
    from .server import run as run_server

    typer.echo(f"serving {settings.index_dir} on http://{settings.host}:{settings.port}/", err=True)
    run(lambda: run_server(settings))
    exit_now(0)


def demo_dir() -> Path:
    """Where ``recommender demo`` builds its index (a cache folder; ``--index-dir`` chooses another)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "related-articles" / "demo-index"


def demo(
    index_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--index-dir",
            metavar="DIR",
            help="Where to build the demo index (default: ~/.cache/related-articles/demo-index, under "
            "XDG_CACHE_HOME when set; RECOMMENDER_INDEX_DIR is left to your own index).",
            show_default=False,
        ),
    ] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Build the demo index, print what to try, and exit.")
    ] = False,
) -> None:
    """Build the bundled demo corpus (140 original articles) and serve it with the demo page.

    Example: recommender demo --port 8000
    """
    from importlib import resources

    settings = settings_from(index_dir=index_dir or demo_dir(), host=host, port=port)
    corpus = resources.files("recommender") / "data" / "demo_articles.jsonl"

    def go():
        from recommender.build import build_index

        with resources.as_file(corpus) as path:
            return build_index([path], settings, progress=True)

    result = run(go)
    typer.echo(result.summary())
    url = f"http://{settings.host}:{settings.port}"
    folder = settings.index_dir
    typer.echo(
        f"\nThe demo index is in {folder}. Try:\n"
        f"  recommender related demo-006 --index-dir {folder}\n"
        f"  recommender evaluate --index-dir {folder} --label-field story_id --report ./demo-report\n"
        f"  curl '{url}/v1/articles/demo-006/related?k=3'" + ("  (while the demo serves)" if no_serve else "")
    )
    if no_serve:
        return
    from .server import exit_now
    from .server import run as run_server

    typer.echo(f"\nDemo running: open {url}/  (Ctrl-C to stop)")
    run(lambda: run_server(settings))
    exit_now(0)
