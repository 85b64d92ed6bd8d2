"""Is system B really better than system A? Paired tests on per-query scores of one metric.

Means alone hide whether a 0.01 gain is noise. Both systems answer the same queries, so the tests are paired:
a t-test (mean difference), a Wilcoxon signed-rank test (robust to the skewed, tie-heavy distributions of
ranking metrics), Cohen's d for paired samples (mean difference / std of differences) and a seeded bootstrap
95% CI of the mean difference, plus wins/ties/losses that anyone can read.

Degenerate inputs never produce a crash or NaN where an answer exists: identical systems give difference 0,
p = 1, d = 0 and CI [0, 0]. Genuinely undefined values (a test on one query, d when every difference is the same
non-zero number) are NaN/inf in :class:`Comparison` and ``None`` in :meth:`Comparison.to_dict` (valid JSON).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Comparison", "compare_scores", "compare_to_baseline", "TIE_TOLERANCE"]

logger = logging.getLogger(__name__)

TIE_TOLERANCE = 1e-12
"""Differences this small are ties: floating-point noise must not count as a win."""


@dataclass(frozen=True)
class Comparison:
    """``system`` minus ``baseline`` on ``metric``: positive differences and wins favour ``system``."""

    metric: str
    baseline: str
    system: str
    n: int
    baseline_mean: float
    system_mean: float
    mean_difference: float
    ci_low: float
    ci_high: float
    confidence: float
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    cohens_d: float
    wins: int
    ties: int
    losses: int

    def significant(self, alpha: float = 0.05) -> bool:
        """Both tests below ``alpha``: the conservative reading for a go/no-go decision."""
        return (
            math.isfinite(self.t_pvalue)
            and math.isfinite(self.wilcoxon_pvalue)
            and self.t_pvalue < alpha
            and self.wilcoxon_pvalue < alpha
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite floats become ``None`` (JSON has no NaN/Infinity)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def _bootstrap_ci(differences: np.ndarray, n_bootstrap: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean difference (scipy.stats.bootstrap, seeded)."""
    from scipy import stats

    if np.all(differences == differences[0]):
        value = float(differences[0])  # every resample has the same mean: the interval is that point
        return value, value
    result = stats.bootstrap(
        (differences,),
        np.mean,
        n_resamples=n_bootstrap,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare_scores(
    baseline_scores: Mapping[str, float],
    system_scores: Mapping[str, float],
    *,
    metric: str = "",
    baseline: str = "baseline",
    system: str = "system",
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Paired comparison of two ``{query_id: score}`` dicts over the same queries.

    Raises ValueError when the query sets differ (pairing would silently drop queries) or are empty.
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap!r}")
    only_baseline = set(baseline_scores) - set(system_scores)
    only_system = set(system_scores) - set(baseline_scores)
    if only_baseline or only_system:
        raise ValueError(
            f"per-query scores cover different queries ({len(only_baseline)} only in {baseline!r}, "
            f"{len(only_system)} only in {system!r})"
        )
    queries = sorted(baseline_scores)
    if not queries:
        raise ValueError("no queries to compare")
    a = np.array([float(baseline_scores[q]) for q in queries], dtype=np.float64)
    b = np.array([float(system_scores[q]) for q in queries], dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("per-query scores must be finite numbers")
    diff = b - a
    diff[np.abs(diff) <= TIE_TOLERANCE] = 0.0
    n = diff.size
    mean_diff = float(diff.mean())
    wins = int(np.sum(diff > 0))
    losses = int(np.sum(diff < 0))
    ties = n - wins - losses
    nan = float("nan")

    if wins == losses == 0:  # identical on every query: the answer is known, no test needed
        t_stat, t_p, w_stat, w_p, d = 0.0, 1.0, 0.0, 1.0, 0.0
        ci = (0.0, 0.0)
    else:
        sd = float(diff.std(ddof=1)) if n > 1 else nan
        if n < 2:
            t_stat = t_p = d = nan
        elif sd == 0.0:  # every query moved by the same amount: infinitely "consistent"
            t_stat = math.copysign(math.inf, mean_diff)
            t_p = 0.0
            d = math.copysign(math.inf, mean_diff)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = stats.ttest_rel(b, a)
            t_stat, t_p = float(result.statistic), float(result.pvalue)
            d = mean_diff / sd
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = stats.wilcoxon(diff, zero_method="wilcox")
                w_stat, w_p = float(result.statistic), float(result.pvalue)
            except ValueError:
                w_stat, w_p = nan, nan
        ci = _bootstrap_ci(diff, n_bootstrap, confidence, seed)
    return Comparison(
        metric=metric,
        baseline=baseline,
        system=system,
        n=n,
        baseline_mean=float(a.mean()),
        system_mean=float(b.mean()),
        mean_difference=mean_diff,
        ci_low=ci[0],
        ci_high=ci[1],
        confidence=confidence,
        t_statistic=t_stat,
        t_pvalue=t_p,
        wilcoxon_statistic=w_stat,
        wilcoxon_pvalue=w_p,
        cohens_d=d,
        wins=wins,
        ties=ties,
        losses=losses,
    )


def compare_to_baseline(
    per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    baseline: str | None = None,
    metrics: Iterable[str] | None = None,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Comparison]:
    """Compare every system with ``baseline`` (default: the first system) on each metric.

    ``per_query`` is ``{system: {query_id: {metric: score}}}``, the shape :func:`per_query_ranking_metrics`
    returns per system.
    """
    systems = list(per_query)
    if not systems:
        return []
    if baseline is None:
        baseline = systems[0]
    if baseline not in per_query:
        raise ValueError(f"unknown baseline {baseline!r}; allowed: {', '.join(systems)}")
    base = per_query[baseline]
    if metrics is None:
        keys: list[str] = []
        for scores in base.values():
            keys.extend(key for key in scores if key not in keys)
        metrics = keys
    metrics = list(metrics)
    available = {key for scores in base.values() for key in scores}
    for metric in metrics:
        if metric not in available:
            raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(sorted(available))}")
    out = []
    for name in systems:
        if name == baseline:
            continue
        for metric in metrics:
            out.append(
                compare_scores(
                    {q: s[metric] for q, s in base.items()},
                    {q: s[metric] for q, s in per_query[name].items()},
                    metric=metric,
                    baseline=baseline,
                    system=name,
                    n_bootstrap=n_bootstrap,
                    confidence=confidence,
                    seed=seed,
                )
            )
    return out
