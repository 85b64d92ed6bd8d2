"""Online evaluation: what readers did with each variant's related boxes, and whether the difference is real.

Per variant: visitors, impressions, clicks, click-through rate (clicks / impressions) and CTR by position, each
with a Wilson 95% interval (exact enough at CTRs of a few percent, where the normal interval leaves [0, 1]).

Comparing each variant with the baseline (the first configured variant, normally ``control``). The unit of
randomisation is the visitor, not the impression: one visitor's impressions share their taste and their page
views, so they are not independent, and a test that treats impressions as independent (the two-proportion z-test,
reported as ``p_naive`` for comparison) understates the variance and finds "significant" differences too often.
Two visitor-level analyses are reported instead:

- ``p_value``: a z-test of the difference in CTR with the variance of each variant's ratio estimated by the delta
  method over visitors (the clicks and impressions of a visitor as one correlated pair; Deng, Knoblich and Lu,
  "Applying the Delta Method in Metric Analytics", KDD 2018), two-sided; with more than one variant against the
  baseline, also Holm-adjusted (``p_holm``) so that testing several arms does not inflate false positives;
- ``ci_low``/``ci_high``: a percentile bootstrap 95% interval of the CTR difference that resamples visitors (with
  all their events) within each variant, seeded.

The sample-ratio-mismatch check compares the visitors observed in each variant with the configured shares
(chi-square goodness of fit). A mismatch (p < 0.001, the usual threshold: with many visitors, small p-values come
easily, and the cost of a false alarm is a check of the pipeline) means visitors were lost or moved unequally
(a widget failing in one variant, a cache serving one variant to everyone, bots), and then no difference in CTR
can be trusted, whatever its p-value.

Visitors seen in more than one variant (shares or the salt changed during the window, forged ids) are not
randomised units: they are left out of every figure and counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..events.variants import DEFAULT_VARIANT

__all__ = [
    "SRM_ALPHA",
    "OnlineResult",
    "SrmCheck",
    "VariantComparison",
    "VariantStats",
    "delta_method_variance",
    "evaluate_online",
    "holm",
    "wilson",
]

Z95 = 1.959963984540054
#: p-value below which observed visitor counts are a sample ratio mismatch.
SRM_ALPHA = 0.001


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (nan, nan) for no trials."""
    if trials <= 0:
        return math.nan, math.nan
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def delta_method_variance(clicks: Any, impressions: Any) -> float:
    """Variance of sum(clicks) / sum(impressions) over independent visitors (arrays of per-visitor counts)."""
    import numpy as np

    c = np.asarray(clicks, dtype=np.float64)
    n = np.asarray(impressions, dtype=np.float64)
    m = c.size
    if m < 2 or n.sum() == 0:
        return math.nan
    ratio = c.sum() / n.sum()
    mean_n = n.mean()
    cov = np.cov(c, n, ddof=1)
    return float((cov[0, 0] - 2 * ratio * cov[0, 1] + ratio * ratio * cov[1, 1]) / (m * mean_n * mean_n))


def _p_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2)) if math.isfinite(z) else (0.0 if math.isinf(z) else math.nan)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and is not counted)."""
    finite = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    m = len(finite)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * p))
        out[index] = running
    return out


@dataclass
class VariantStats:
    name: str
    visitors: int
    impressions: int
    clicks: int
    ctr: float
    ctr_low: float
    ctr_high: float
    clicking_visitors: int
    #: position -> (impressions, clicks, ctr, low, high)
    by_position: dict[int, tuple[int, int, float, float, float]] = field(default_factory=dict)
    #: date -> (impressions, clicks)
    daily: dict[str, tuple[int, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["by_position"] = {
            str(p): {"impressions": i, "clicks": c, "ctr": r, "ctr_low": lo, "ctr_high": hi}
            for p, (i, c, r, lo, hi) in self.by_position.items()
        }
        out["daily"] = {d: {"impressions": i, "clicks": c} for d, (i, c) in self.daily.items()}
        return out


@dataclass
class VariantComparison:
    """``variant`` minus ``baseline`` on CTR."""

    variant: str
    baseline: str
    ctr_baseline: float
    ctr_variant: float
    difference: float
    relative: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    p_holm: float
    p_naive: float
    visitors: tuple[int, int]

    def significant(self, alpha: float = 0.05) -> bool:
        return math.isfinite(self.p_holm) and self.p_holm < alpha

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["visitors"] = {"baseline": self.visitors[0], "variant": self.visitors[1]}
        out["significant"] = self.significant()
        return out


@dataclass
class SrmCheck:
    observed: dict[str, int]
    shares: dict[str, float]
    expected: dict[str, float]
    chi2: float
    p_value: float
    #: variants with visitors but no configured share (or share 0)
    unexpected: dict[str, int]

    @property
    def mismatch(self) -> bool:
        return bool(self.unexpected) or (math.isfinite(self.p_value) and self.p_value < SRM_ALPHA)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mismatch": self.mismatch, "alpha": SRM_ALPHA}

    def line(self) -> str:
        observed = ", ".join(
            f"{n} {self.observed.get(n, 0)} (expected {self.expected.get(n, 0):.0f})" for n in self.shares
        )
        extra = f"; visitors in variants without a share: {self.unexpected}" if self.unexpected else ""
        verdict = "SAMPLE RATIO MISMATCH: do not trust the comparisons" if self.mismatch else "no sample ratio mismatch"
        return f"{verdict} (chi-square {self.chi2:.2f}, p = {self.p_value:.3g}; visitors {observed}{extra})"


@dataclass
class OnlineResult:
    variants: list[VariantStats]
    comparisons: list[VariantComparison]
    srm: SrmCheck | None
    quality: dict[str, Any]
    baseline: str

    def stats(self, name: str) -> VariantStats:
        return next(v for v in self.variants if v.name == name)


def _codes(column: Any) -> tuple[Any, list[str]]:
    import numpy as np
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column).combine_chunks()
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64), encoded.dictionary.to_pylist()


def _bootstrap(groups: Sequence[tuple[Any, Any]], n: int, seed: int) -> tuple[float, float]:
    """Percentile interval of ratio(variant) - ratio(baseline), resampling visitors within each group."""
    import numpy as np

    if n <= 0 or any(len(c) < 2 for c, _ in groups):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    ratios = []
    for clicks, impressions in groups:
        m = len(clicks)
        chunk = max(1, 2_000_000 // m)
        out = np.empty(n)
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            picks = rng.integers(0, m, size=(size, m))
            out[start : start + size] = clicks[picks].sum(axis=1) / np.maximum(impressions[picks].sum(axis=1), 1)
        ratios.append(out)
    difference = ratios[1] - ratios[0]
    low, high = np.percentile(difference, [2.5, 97.5])
    return float(low), float(high)


def srm_check(observed: Mapping[str, int], shares: Mapping[str, float]) -> SrmCheck:
    """Chi-square goodness of fit of visitors per variant against the configured shares."""
    from scipy import stats

    tested = {n: s for n, s in shares.items() if s > 0}
    unexpected = {n: c for n, c in observed.items() if c and n not in tested}
    total = sum(observed.get(n, 0) for n in tested)
    share_sum = sum(tested.values())
    expected = {n: total * s / share_sum for n, s in tested.items()}
    if total == 0 or len(tested) < 2:
        return SrmCheck(dict(observed), dict(shares), expected, math.nan, math.nan, unexpected)
    counts = [observed.get(n, 0) for n in tested]
    result = stats.chisquare(counts, [expected[n] for n in tested])
    return SrmCheck(dict(observed), dict(shares), expected, float(result.statistic), float(result.pvalue), unexpected)


def evaluate_online(
    table: Any,
    *,
    shares: Mapping[str, float] | None = None,
    baseline: str | None = None,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> OnlineResult:
    """Per-variant figures, comparisons with ``baseline`` (default: the first of ``shares``, else ``control``, else
    the variant with most visitors) and the sample-ratio check (skipped without ``shares``) from an events table
    (:func:`recommender.events.read.load_events`)."""
    import numpy as np
    import pyarrow.compute as pc

    quality: dict[str, Any] = {"events": table.num_rows}
    if table.num_rows:
        at = table.column("at")
        quality["first_event"] = pc.min(at).as_py().isoformat()
        quality["last_event"] = pc.max(at).as_py().isoformat()
    quality["orphan_clicks"] = _orphan_clicks(table)
    visitor, visitors = _codes(table.column("visitor")) if table.num_rows else (np.zeros(0, np.int64), [])
    variant, names = _codes(table.column("variant")) if table.num_rows else (np.zeros(0, np.int64), [])
    clicks_mask = np.asarray(pc.equal(table.column("type"), "click").to_numpy(zero_copy_only=False), dtype=bool)
    position = np.asarray(table.column("position").to_numpy(), dtype=np.int64)
    day = (
        (np.asarray(table.column("at").cast("int64").to_numpy(), dtype=np.int64) // 86_400_000)
        if table.num_rows
        else np.zeros(0, np.int64)
    )

    # Visitors in more than one variant are not randomised units: out of every figure.
    pairs = np.unique(np.stack([visitor, variant]), axis=1) if visitor.size else np.zeros((2, 0), np.int64)
    per_visitor = np.bincount(pairs[0], minlength=len(visitors)) if visitor.size else np.zeros(0, np.int64)
    crossed = per_visitor > 1
    keep = ~crossed[visitor] if visitor.size else np.zeros(0, bool)
    quality["visitors"] = int((per_visitor > 0).sum())
    quality["visitors_in_several_variants"] = int(crossed.sum())
    quality["events_of_those_visitors"] = int((~keep).sum())

    # Baseline first: the first configured variant, else the default variant (control) when present.
    order = list(shares) if shares else ([DEFAULT_VARIANT] if DEFAULT_VARIANT in names else [])
    order += sorted(
        (n for n in names if n not in order), key=lambda n: -int(((variant == names.index(n)) & keep).sum())
    )
    present = [n for n in order if n in names]
    stats: list[VariantStats] = []
    per_visitor_counts: dict[str, tuple[Any, Any]] = {}
    for name in present:
        rows = keep & (variant == names.index(name))
        codes = visitor[rows]
        members = np.unique(codes)
        index = np.searchsorted(members, codes)
        impressions = np.bincount(index, weights=~clicks_mask[rows], minlength=members.size)
        clicks = np.bincount(index, weights=clicks_mask[rows], minlength=members.size)
        per_visitor_counts[name] = (clicks, impressions)
        total_i, total_c = int(impressions.sum()), int(clicks.sum())
        low, high = wilson(total_c, total_i)
        item = VariantStats(
            name=name,
            visitors=int(members.size),
            impressions=total_i,
            clicks=total_c,
            ctr=total_c / total_i if total_i else math.nan,
            ctr_low=low,
            ctr_high=high,
            clicking_visitors=int((clicks > 0).sum()),
        )
        pos = position[rows]
        is_click = clicks_mask[rows]
        for p in np.unique(pos):
            at_p = pos == p
            n_i, n_c = int((at_p & ~is_click).sum()), int((at_p & is_click).sum())
            lo, hi = wilson(n_c, n_i)
            item.by_position[int(p)] = (n_i, n_c, n_c / n_i if n_i else math.nan, lo, hi)
        days = day[rows]
        for d in np.unique(days):
            on = days == d
            date = datetime.fromtimestamp(int(d) * 86400, tz=UTC).strftime("%Y-%m-%d")
            item.daily[date] = (int((on & ~is_click).sum()), int((on & is_click).sum()))
        stats.append(item)

    base = baseline or (present[0] if present else "")
    comparisons: list[VariantComparison] = []
    if base in per_visitor_counts:
        reference = next(s for s in stats if s.name == base)
        for offset, item in enumerate(s for s in stats if s.name != base):
            comparisons.append(_compare(reference, item, per_visitor_counts, n_bootstrap, seed + offset))
        for comparison, adjusted in zip(comparisons, holm([c.p_value for c in comparisons])):
            comparison.p_holm = adjusted
    srm = srm_check({s.name: s.visitors for s in stats}, shares) if shares else None
    return OnlineResult(stats, comparisons, srm, quality, base)


def _compare(
    reference: VariantStats, item: VariantStats, counts: Mapping[str, tuple[Any, Any]], n_bootstrap: int, seed: int
) -> VariantComparison:
    a_clicks, a_impressions = counts[reference.name]
    b_clicks, b_impressions = counts[item.name]
    difference = item.ctr - reference.ctr
    variance = delta_method_variance(a_clicks, a_impressions) + delta_method_variance(b_clicks, b_impressions)
    z = (
        difference / math.sqrt(variance)
        if variance > 0
        else (math.nan if difference == 0 else math.copysign(math.inf, difference))
    )
    pooled_n = reference.impressions + item.impressions
    pooled = (reference.clicks + item.clicks) / pooled_n if pooled_n else math.nan
    naive_se = (
        math.sqrt(pooled * (1 - pooled) * (1 / reference.impressions + 1 / item.impressions))
        if reference.impressions and item.impressions
        else math.nan
    )
    naive_z = difference / naive_se if naive_se and math.isfinite(naive_se) else math.nan
    low, high = _bootstrap([(a_clicks, a_impressions), (b_clicks, b_impressions)], n_bootstrap, seed)
    return VariantComparison(
        variant=item.name,
        baseline=reference.name,
        ctr_baseline=reference.ctr,
        ctr_variant=item.ctr,
        difference=difference,
        relative=difference / reference.ctr if reference.ctr else math.nan,
        ci_low=low,
        ci_high=high,
        z=z,
        p_value=_p_two_sided(z),
        p_holm=math.nan,
        p_naive=_p_two_sided(naive_z),
        visitors=(reference.visitors, item.visitors),
    )


def _orphan_clicks(table: Any) -> int:
    """Clicks with no impression of the same item, position, list and visitor (a lost impression beacon)."""
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return 0
    keys = ["request_id", "visitor", "item_id", "position"]
    is_click = pc.equal(table.column("type"), "click")
    clicks = table.filter(is_click).select(keys)
    if clicks.num_rows == 0:
        return 0
    shown = table.filter(pc.invert(is_click)).select(keys).group_by(keys).aggregate([])
    return clicks.join(shown, keys=keys, join_type="left anti").num_rows
