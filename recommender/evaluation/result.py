"""The result of one offline evaluation: plain data a notebook can inspect or plot.

Text tables are :func:`~.formatting.format_table` and :func:`~.formatting.format_comparisons`; files are
:func:`~.report.write_report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .compare import Comparison
from .groundtruth import UnknownIds
from .metrics import RANKING_METRICS, metric_key

__all__ = ["EvaluationResult"]


@dataclass
class EvaluationResult:
    """Everything one evaluation produced; every field is plain data a notebook can inspect or plot.

    ``means[system]`` is the flat headline dict (ranking means at the cutoffs, beyond-accuracy metrics at
    ``k = max(cutoffs)``, latency percentiles); ``per_query[system][query_id]`` holds ranking metrics;
    ``curves[system][metric][k]`` the mean metric at each k of ``curve_ks``; ``health[system]`` the fault counts.
    """

    systems: list[str]
    queries: list[str]
    cutoffs: tuple[int, ...]
    curve_ks: tuple[int, ...]
    means: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, dict[str, float]]]
    curves: dict[str, dict[str, dict[int, float]]]
    beyond_accuracy: dict[str, dict[str, float]]
    latencies_ms: dict[str, dict[str, float]]
    runs: dict[str, dict[str, list[str]]]
    health: dict[str, dict[str, int]]
    unknown: UnknownIds | None
    comparisons: list[Comparison]
    meta: dict[str, Any] = field(default_factory=dict)
    #: box metrics per system (see :mod:`.boxes`), with the floor each was measured at; empty when not computed
    boxes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def baseline(self) -> str:
        """The reference system: the first one passed to :func:`evaluate`."""
        return self.systems[0]

    @property
    def ranking_keys(self) -> list[str]:
        """Ranking metric keys in display order (metric family, then cutoff)."""
        names = self.meta.get("metrics", RANKING_METRICS)
        return [metric_key(name, k) for name in names for k in self.cutoffs]

    @property
    def headline_metric(self) -> str:
        """The metric plots and summaries lead with: nDCG at the largest cutoff when computed."""
        preferred = metric_key("ndcg", max(self.cutoffs))
        keys = self.ranking_keys
        return preferred if preferred in keys else keys[-1]

    def comparisons_for(self, metric: str) -> list[Comparison]:
        return [c for c in self.comparisons if c.metric == metric]
