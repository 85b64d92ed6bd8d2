"""The publish gate: a nightly build that ranks worse than the published version is not published.

The ground truth is either a qrels TSV (``query_id<TAB>doc_id<TAB>grade`` with that header) or a reading log
(``sessions.jsonl``: ``{"session_id": ..., "article_ids": [...]}`` a line, co-reads graded as in
``recommender evaluate --sessions``). They are told apart by content, not by file name: a file whose first
non-blank line is a JSON object is a sessions file, anything else must be a qrels TSV (whose header check then
names the problem). Exported logs are often named ``.json``, ``.log`` or ``.txt``, so the extension says little.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from ..engine import Recommender
from ..errors import ValidationFailedError
from ..ranking import RankingConfig
from ..relevance import RelevanceModel
from .groundtruth import Qrels
from .metrics import ranking_metrics
from .qrels import load_qrels
from .sessions import qrels_from_sessions

__all__ = ["make_gate", "load_gate_truth", "ground_truth_kind", "GATE_METRIC"]

logger = logging.getLogger(__name__)
GATE_METRIC = "ndcg@10"


class _AnyId(frozenset):
    """A corpus that holds every id. The gate reads the sessions file before the build (so a malformed file
    fails before any embedding work), when no index exists yet to check ids against; ids the indexes lack are
    then simply never asked (queries) or never recommended (docs), exactly as with a qrels file."""

    def __contains__(self, item: object) -> bool:
        return True


def ground_truth_kind(path: Path) -> str:
    """``"sessions"`` when the first non-blank line is a JSON object, else ``"qrels"``."""
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                text = raw.lstrip(b"\xef\xbb\xbf").strip()
                if text:
                    return "sessions" if text.startswith(b"{") else "qrels"
    except OSError:
        pass  # load_qrels reports the unreadable path with its own message
    return "qrels"


def load_gate_truth(path: Path) -> tuple[Qrels, dict[str, Any]]:
    """The gate's qrels and a description of where they came from (kept in the build report)."""
    path = Path(path)
    kind = ground_truth_kind(path)
    if kind == "sessions":
        qrels, _, stats = qrels_from_sessions(path, _AnyId())
        return qrels, {"ground_truth_kind": kind, "sessions": stats.sessions, "co_read_pairs": stats.pairs}
    return load_qrels(path), {"ground_truth_kind": kind}


def _score(rec: Recommender, qrels: dict[str, dict[str, float]], queries: list[str]) -> float:
    run = {q: [r.article.id for r in rec.related(q, 10)] for q in queries}
    return ranking_metrics(run, {q: qrels[q] for q in queries}, cutoffs=(10,), metrics=("ndcg",)).get(GATE_METRIC, 0.0)


def make_gate(
    ground_truth: Path,
    *,
    max_drop: float = 0.01,
    config: RankingConfig | None = None,
    relevance: RelevanceModel | Path | str | None = "default",
) -> Callable[[Path, Path | None], dict[str, Any]]:
    """A build gate comparing nDCG@10 of the staged version with the published one on the same queries, both
    served as the service would serve them (``config`` and the ``relevance`` model, so the same floor).

    ``ground_truth``: a qrels TSV or a sessions JSONL (see the module docstring for how they are told apart)."""
    if max_drop < 0:
        raise ValueError("max_drop must not be negative")
    qrels, source = load_gate_truth(ground_truth)  # read now: a malformed file fails before any embedding work

    def gate(staged: Path, previous: Path | None) -> dict[str, Any]:
        new = Recommender.load(staged, config=config, relevance=relevance)
        old = Recommender.load(previous, config=config, relevance=relevance) if previous is not None else None
        queries = sorted(q for q in qrels if q in new and (old is None or q in old))
        if not queries:
            raise ValidationFailedError(
                f"quality gate: none of the {len(qrels)} queries in {ground_truth} is in the new index; nothing published"
            )
        result: dict[str, Any] = {
            "metric": GATE_METRIC,
            "queries": len(queries),
            "max_drop": max_drop,
            "ground_truth": str(ground_truth),
            **source,
        }
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
