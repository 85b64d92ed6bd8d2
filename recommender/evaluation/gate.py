"""The publish gate: a nightly build that ranks worse than the published version is not published."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from ..engine import Recommender
from ..errors import ValidationFailedError
from ..ranking import RankingConfig
from .groundtruth import load_qrels
from .metrics import ranking_metrics

__all__ = ["make_gate", "GATE_METRIC"]

logger = logging.getLogger(__name__)
GATE_METRIC = "ndcg@10"


def _score(rec: Recommender, qrels: dict[str, dict[str, float]], queries: list[str]) -> float:
    run = {q: [r.article.id for r in rec.related(q, 10)] for q in queries}
    return ranking_metrics(run, {q: qrels[q] for q in queries}, cutoffs=(10,), metrics=("ndcg",)).get(GATE_METRIC, 0.0)


def make_gate(ground_truth: Path, *, max_drop: float = 0.01, config: RankingConfig | None = None) -> Callable[[Path, Path | None], dict[str, Any]]:
    """A build gate comparing nDCG@10 of the staged version with the published one on the same queries."""
    if max_drop < 0:
        raise ValueError("max_drop must not be negative")
    qrels = load_qrels(ground_truth)  # read now: a malformed file fails before any embedding work

    def gate(staged: Path, previous: Path | None) -> dict[str, Any]:
        new = Recommender.load(staged, config=config)
        old = Recommender.load(previous, config=config) if previous is not None else None
        queries = sorted(q for q in qrels if q in new and (old is None or q in old))
        if not queries:
            raise ValidationFailedError(f"quality gate: none of the {len(qrels)} queries in {ground_truth} is in the new index; nothing published")
        result: dict[str, Any] = {"metric": GATE_METRIC, "queries": len(queries), "max_drop": max_drop, "ground_truth": str(ground_truth)}
        result["new"] = round(_score(new, qrels, queries), 6)
        result["previous"] = round(_score(old, qrels, queries), 6) if old is not None else None
        result["passed"] = old is None or result["new"] >= result["previous"] - max_drop
        logger.info("quality gate: %s", result)
        if not result["passed"]:
            raise ValidationFailedError(
                f"quality gate: {GATE_METRIC} {result['new']:.4f} is {result['previous'] - result['new']:.4f} below the "
                f"published version's {result['previous']:.4f} (allowed drop {max_drop}); nothing published",
                result,
            )
        return result

    return gate
