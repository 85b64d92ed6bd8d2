"""``recommender build``: an export in, a new version published (or a one-line reason why not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import IndexDirOpt, JsonOpt, run, setting_help, settings_from

__all__ = ["build"]


def build(
    articles: Annotated[
        list[Path],
        typer.Argument(metavar="EXPORT", help="JSONL, CSV or Parquet files, or folders of them.", show_default=False),
    ],
    index_dir: IndexDirOpt = None,
    full: Annotated[
        bool, typer.Option("--full", help="Re-embed everything instead of reusing unchanged vectors.")
    ] = False,
    model: Annotated[
        Optional[str], typer.Option(metavar="NAME|DIR", help=setting_help("Model name or local folder.", "model"))
    ] = None,
    backend: Annotated[
        Optional[str], typer.Option(metavar="NAME", help=setting_help("Embedding backend.", "embedding_backend"))
    ] = None,
    index_type: Annotated[
        Optional[str],
        typer.Option(metavar="TYPE", help=setting_help("auto, flat, hnsw, ivf, hnsw_sq8 or ivf_sq8.", "index_type")),
    ] = None,
    max_reject_share: Annotated[
        Optional[float],
        typer.Option(metavar="X", help=setting_help("Fail above this share of bad rows.", "max_reject_share")),
    ] = None,
    gate: Annotated[
        Optional[Path],
        typer.Option(
            metavar="FILE",
            help="Ground truth for the publish quality gate: a qrels TSV or a sessions JSONL (told apart by content).",
        ),
    ] = None,
    max_drop: Annotated[
        float, typer.Option(metavar="X", min=0.0, help="Gate: refuse when nDCG@10 drops more than this.")
    ] = 0.01,
    report: Annotated[
        Optional[Path], typer.Option(metavar="FILE", help="Also write the JSON build report here.")
    ] = None,
    engine: Annotated[
        Optional[str],
        typer.Option(
            metavar="NAME",
            help=setting_help("Embedding engine: local, or ray (pip install '.[distributed]').", "engine"),
        ),
    ] = None,
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            metavar="ADDRESS",
            help=setting_help(
                "Ray cluster address, e.g. auto or ray://head:10001; unset starts a local Ray.", "ray_address"
            ),
        ),
    ] = None,
    ray_workers: Annotated[
        Optional[int],
        typer.Option(
            metavar="N", min=1, help=setting_help("Embedding actors on Ray; unset: one per CPU.", "ray_workers")
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a new index version from an export and publish it atomically.

    Example: recommender build export.jsonl --index-dir /srv/related/index
    """
    settings = settings_from(
        index_dir=index_dir, model=model, embedding_backend=backend, index_type=index_type,
        max_reject_share=max_reject_share, engine=engine, ray_address=ray_address, ray_workers=ray_workers,
    )  # fmt: skip

    def go():
        from ..build import build_index

        gate_fn = None
        if gate is not None:
            from ..evaluation.gate import make_gate

            gate_fn = make_gate(
                gate, max_drop=max_drop, config=settings.ranking_config(), relevance=settings.relevance()
            )
        return build_index(articles, settings, full=full, progress=True, gate=gate_fn)

    result = run(go)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(result.summary())
        if result.rejects_file:
            typer.echo(f"{result.counts.get('rejected', 0)} rejected rows listed in {result.rejects_file}")
