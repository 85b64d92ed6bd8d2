"""``recommender calibrate``: refit the calibrated relevance model (the floor's scale) on a site's own judgments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import GradingOpt, IndexDirOpt, JsonOpt, LabelFieldOpt, QrelsOpt, SessionsOpt, fail, run, settings_from

__all__ = ["calibrate"]


def calibrate(
    qrels: QrelsOpt = None,
    label_field: LabelFieldOpt = None,
    grading: GradingOpt = "exact",
    sessions: SessionsOpt = None,
    index_dir: IndexDirOpt = None,
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="Where to write the model (JSON).")] = Path(
        "relevance-model.json"
    ),
    method: Annotated[
        str, typer.Option(metavar="NAME", help="Calibration: isotonic or sigmoid (Platt; for few judgments).")
    ] = "isotonic",
    folds: Annotated[
        int, typer.Option(metavar="N", min=2, max=20, help="Cross-validation folds (grouped by story).")
    ] = 5,
    min_grade: Annotated[
        Optional[float],
        typer.Option(
            metavar="G",
            help="Lowest grade that counts as related (default: a qrels file's top grade, e.g. 2 = same story in "
            "ecbplus-dev; 1 for --label-field and --sessions).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the calibrated relevance model on judgments of the published index: logistic regression on the
    engine's pair features, calibrated (isotonic or sigmoid) with folds grouped by story, written as a small JSON
    file with its cross-validated training report. Serve it with RECOMMENDER_RELEVANCE_MODEL=FILE.

    Example: recommender calibrate --label-field story_id --out relevance-model.json
    """
    if sum(x is not None for x in (qrels, label_field, sessions)) != 1:
        fail("give exactly one ground truth: --qrels FILE, --label-field NAME or --sessions FILE", 2)
    if method not in ("isotonic", "sigmoid"):
        fail(f"--method must be isotonic or sigmoid, got {method!r}", 2)
    settings = settings_from(index_dir=index_dir)

    def go():
        from ..calibration import calibrate_index
        from ..evaluation.offline import GroundTruth

        truth = GroundTruth(qrels=qrels, label_field=label_field, grading=grading, sessions=sessions)
        return calibrate_index(settings, truth, out, method=method, folds=folds, min_grade=min_grade)

    try:
        report = run(go)
    except ValueError as exc:  # a ground-truth file or label the evaluation modules reject
        fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps({"model": str(out), **report}, indent=2))
        return
    cv = report["cross_validated"]
    typer.echo(
        f"{report['pairs']} pairs ({report['related_share']:.1%} related) from {report['queries']} queries in "
        f"{report['stories']} stories; {report['method']}, {report['folds']}-fold grouped CV: "
        f"ECE {cv['ece']:.4f}, Brier {cv['brier']:.4f}, AUC {cv['auc']:.4f}"
    )
    typer.echo(f"wrote {out}; serve it with RECOMMENDER_RELEVANCE_MODEL={out}")
