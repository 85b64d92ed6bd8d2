"""Evaluation metrics as pure functions returning flat dicts keyed like ``ndcg@10``.

Ranking accuracy is delegated to ir-measures: the trec_eval definitions are the ones papers and other teams
report, and re-implementing them is how off-by-one cutoffs creep in. ir-measures' default pipeline picks the
provider per measure (pytrec_eval for nDCG/P/R/AP/Success, its msmarco provider for RR@k). Do not force the
pytrec_eval provider: it ignores RR's cutoff (trec_eval's ``recip_rank`` has none) and, asked for RR@5 and RR@10
together, returns mislabelled values. Beyond-accuracy
metrics (coverage, diversity, novelty, freshness, near-duplicates, self-recommendation, latency) are small
enough to write here and have no standard implementation to defer to.

Relevance conventions, chosen deliberately:

* nDCG uses the graded qrels with linear gains by default (trec_eval's ``ndcg_cut``: gain = grade);
  ``gains="exponential"`` uses Burges' 2**grade - 1 (stronger reward for the best grade; on ECB+ it scores TF-IDF
  about 0.01 lower). Exponential gains are applied by mapping each grade to its gain before ir-measures sees the
  qrels: nDCG is linear in the gains, so that is exactly exponential-gain nDCG. pytrec_eval only accepts integer
  (32-bit) relevance, so when any gain is fractional (Jaccard overlap) all gains are multiplied by
  :data:`GRADE_SCALE` and rounded. nDCG is a ratio of two gain sums, so the scale cancels; the rounding moves a
  gain by at most 0.0005, i.e. nDCG by well under 0.1%.
* precision, recall, MRR, MAP and hit rate are binary: a pair is relevant iff its grade is >= ``relevant_grade``
  (default: any positive grade). Grades are never truncated to int, which would turn Jaccard 0.5 into "not
  relevant".
* MAP@k is trec_eval's ``map_cut``: the sum of precision at each relevant rank <= k divided by the total number
  of relevant documents (not by min(R, k)). MRR@k is 0 when no relevant item is in the top k.
* Every query of the qrels is scored; a system that returned nothing for a query scores 0 there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "RANKING_METRICS",
    "GRADE_SCALE",
    "NDCG_GAINS",
    "Run",
    "metric_key",
    "parse_metric_key",
    "per_query_ranking_metrics",
    "per_query_ranking_metrics_many",
    "ranking_metrics",
    "mean_metrics",
    "metric_curves",
    "catalog_coverage",
    "intra_list_diversity",
    "novelty",
    "freshness",
    "near_duplicate_rate",
    "duplicate_pair_rate",
    "self_recommendation_rate",
    "latency_percentiles",
]

logger = logging.getLogger(__name__)

Run = Mapping[str, Sequence[str]]
"""query_id -> ordered recommended ids (best first)."""

RANKING_METRICS = ("ndcg", "precision", "recall", "mrr", "map", "hit_rate")
NDCG_GAINS = ("linear", "exponential")
GRADE_SCALE = 1000
_INT32_MAX = 2**31 - 1
_QUERY_CHUNK = 1000


def _measure(name: str, k: int) -> Any:
    import ir_measures

    factories = {
        "ndcg": ir_measures.nDCG,
        "precision": ir_measures.P,
        "recall": ir_measures.R,
        "mrr": ir_measures.RR,
        "map": ir_measures.AP,
        "hit_rate": ir_measures.Success,
    }
    return factories[name] @ k


def metric_key(name: str, k: int) -> str:
    """``("ndcg", 10) -> "ndcg@10"``: the one spelling used in dicts, JSON, CSV and plots."""
    return f"{name}@{k}"


def parse_metric_key(key: str) -> tuple[str, int | None]:
    """``"ndcg@10" -> ("ndcg", 10)``; keys without a cutoff give ``(key, None)``."""
    name, sep, cutoff = key.partition("@")
    if sep and cutoff.isdigit():
        return name, int(cutoff)
    return key, None


def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(metrics)
    unknown = [m for m in chosen if m not in RANKING_METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; allowed: {', '.join(RANKING_METRICS)}")
    if not chosen:
        raise ValueError(f"no metric chosen; allowed: {', '.join(RANKING_METRICS)}")
    return chosen


def _check_cutoffs(cutoffs: Iterable[int]) -> tuple[int, ...]:
    values = tuple(cutoffs)
    if not values:
        raise ValueError("cutoffs must not be empty")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"cutoffs must be positive integers, got {k!r}")
    return tuple(sorted({int(k) for k in values}))


def _check_gains(gains: str) -> str:
    if gains not in NDCG_GAINS:
        raise ValueError(f"unknown gains {gains!r}; allowed: {', '.join(NDCG_GAINS)}")
    return gains


def _graded_int_qrels(qrels: Mapping[str, Mapping[str, float]], gains: str = "linear") -> dict[str, dict[str, int]]:
    if gains == "exponential":
        qrels = {q: {d: 2.0 ** float(g) - 1.0 for d, g in per_query.items() if g > 0} for q, per_query in qrels.items()}
    grades = [g for per_query in qrels.values() for g in per_query.values()]
    if all(float(g).is_integer() for g in grades):
        scale = 1
    else:
        scale = GRADE_SCALE
    top = max((abs(float(g)) for g in grades), default=0.0)
    if top * scale > _INT32_MAX:
        raise ValueError(f"grade {top} is too large for trec_eval's 32-bit relevance (max {_INT32_MAX // scale})")
    return {
        query_id: {doc_id: max(1, round(float(g) * scale)) for doc_id, g in per_query.items() if g > 0}
        for query_id, per_query in qrels.items()
    }


def _binary_qrels(qrels: Mapping[str, Mapping[str, float]], relevant_grade: float | None) -> dict[str, dict[str, int]]:
    def relevant(grade: float) -> bool:
        return grade > 0 if relevant_grade is None else grade >= relevant_grade

    return {
        query_id: {doc_id: int(relevant(g)) for doc_id, g in per_query.items() if g > 0}
        for query_id, per_query in qrels.items()
    }


def _run_scores(run: Run, queries: Iterable[str], k_max: int) -> dict[str, dict[str, float]]:
    """Ordered lists -> strictly decreasing scores (pytrec_eval re-sorts by score; ties would reorder by id)."""
    out: dict[str, dict[str, float]] = {}
    for query_id in queries:
        items = run.get(query_id)
        if not items:
            continue
        scores: dict[str, float] = {}
        for item in items:
            if item not in scores and len(scores) < k_max:
                scores[item] = float(k_max - len(scores))
        out[query_id] = scores
    return out


def per_query_ranking_metrics(
    run: Run,
    qrels: Mapping[str, Mapping[str, float]],
    cutoffs: Iterable[int] = (5, 10),
    metrics: Iterable[str] = RANKING_METRICS,
    *,
    relevant_grade: float | None = None,
    gains: str = "linear",
) -> dict[str, dict[str, float]]:
    """Per query: ``{query_id: {"ndcg@10": ..., "precision@5": ...}}`` for every qrels query with a relevant item.

    Duplicate ids in a list count once (first position). Queries in ``run`` but not in ``qrels`` are ignored: with
    no judgement there is nothing to score.
    """
    return per_query_ranking_metrics_many(
        {"": run}, qrels, cutoffs, metrics, relevant_grade=relevant_grade, gains=gains
    )[""]


def per_query_ranking_metrics_many(
    runs: Mapping[str, Run],
    qrels: Mapping[str, Mapping[str, float]],
    cutoffs: Iterable[int] = (5, 10),
    metrics: Iterable[str] = RANKING_METRICS,
    *,
    relevant_grade: float | None = None,
    gains: str = "linear",
) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`per_query_ranking_metrics` for several runs (``{system: run}``) sharing the qrels conversion.

    Preparing tens of millions of label-qrels pairs for ir-measures costs more than scoring, so it is done once
    per query chunk for all systems. Precision, MRR and hit rate read only the relevance of retrieved items, so
    they get qrels restricted to the retrieved ids (same values, far less work); recall, MAP and nDCG need every
    relevant item (for |R| and the ideal ranking) and get the full qrels.
    """
    import ir_measures

    chosen = _check_metrics(metrics)
    ks = _check_cutoffs(cutoffs)
    _check_gains(gains)
    queries = sorted(q for q, per_query in qrels.items() if any(g > 0 for g in per_query.values()))
    results: dict[str, dict[str, dict[str, float]]] = {
        system: {q: {metric_key(name, k): 0.0 for name in chosen for k in ks} for q in queries} for system in runs
    }
    run_scores = {system: _run_scores(run, queries, max(ks)) for system, run in runs.items()}

    names: dict[str, str] = {}
    groups: dict[str, list[Any]] = {"graded": [], "full": [], "local": []}
    for name in chosen:
        for k in ks:
            measure = _measure(name, k)
            names[str(measure)] = metric_key(name, k)
            group = "graded" if name == "ndcg" else "full" if name in ("recall", "map") else "local"
            groups[group].append(measure)
    no_relevant = 0
    # Query chunks bound memory: label qrels of a 20k corpus hold tens of millions of pairs, and the int copies
    # plus pytrec_eval's own copy would triple that. Metrics are per query, so chunking changes no value.
    for start in range(0, len(queries), _QUERY_CHUNK):
        chunk = queries[start : start + _QUERY_CHUNK]
        chunk_runs = {system: {q: scores[q] for q in chunk if q in scores} for system, scores in run_scores.items()}
        if not any(chunk_runs.values()):
            continue
        chunk_qrels = {q: qrels[q] for q in chunk}
        binary = _binary_qrels(chunk_qrels, relevant_grade)
        no_relevant += sum(not any(binary[q].values()) for q in chunk)
        jobs = []
        if groups["graded"]:
            jobs.append((groups["graded"], _graded_int_qrels(chunk_qrels, gains)))
        if groups["full"]:
            jobs.append((groups["full"], binary))
        if groups["local"]:
            retrieved: dict[str, set[str]] = {q: set() for q in chunk}
            for scores in chunk_runs.values():
                for q, items in scores.items():
                    retrieved[q].update(items)
            local = {q: {d: g for d, g in binary[q].items() if d in retrieved[q]} for q in chunk}
            local = {q: grades for q, grades in local.items() if grades}  # nothing relevant retrieved: 0
            if local:
                jobs.append((groups["local"], local))
        for measures, int_qrels in jobs:
            evaluator = ir_measures.evaluator(measures, int_qrels)
            for system, chunk_run in chunk_runs.items():
                if not chunk_run:
                    continue
                per_query = results[system]
                for row in evaluator.iter_calc(chunk_run):
                    if row.query_id in per_query:
                        per_query[row.query_id][names[str(row.measure)]] = float(row.value)
    if relevant_grade is not None and no_relevant:
        logger.info("%d queries have no item with grade >= %s: their binary metrics are 0", no_relevant, relevant_grade)
    return results


def mean_metrics(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Arithmetic mean over queries of each metric key (macro average, as trec_eval's "all" row)."""
    if not per_query:
        return {}
    keys: list[str] = []
    for scores in per_query.values():
        for key in scores:
            if key not in keys:
                keys.append(key)
    return {key: float(np.mean([scores.get(key, 0.0) for scores in per_query.values()])) for key in keys}


def ranking_metrics(
    run: Run,
    qrels: Mapping[str, Mapping[str, float]],
    cutoffs: Iterable[int] = (5, 10),
    metrics: Iterable[str] = RANKING_METRICS,
    *,
    relevant_grade: float | None = None,
    gains: str = "linear",
) -> dict[str, float]:
    """Means over the qrels queries, flat: ``{"ndcg@10": 0.95, "precision@5": 0.8, ...}``."""
    return mean_metrics(
        per_query_ranking_metrics(run, qrels, cutoffs, metrics, relevant_grade=relevant_grade, gains=gains)
    )


def metric_curves(
    run: Run,
    qrels: Mapping[str, Mapping[str, float]],
    ks: Iterable[int],
    metrics: Iterable[str] = RANKING_METRICS,
    *,
    relevant_grade: float | None = None,
    gains: str = "linear",
) -> dict[str, dict[int, float]]:
    """Mean metric at each k, per metric: ``{"ndcg": {1: 0.9, 2: 0.92, ...}}`` (the metric@k plot's data)."""
    chosen = _check_metrics(metrics)
    cutoffs = _check_cutoffs(ks)
    means = ranking_metrics(run, qrels, cutoffs, chosen, relevant_grade=relevant_grade, gains=gains)
    return {name: {k: means.get(metric_key(name, k), 0.0) for k in cutoffs} for name in chosen}


# --------------------------------------------------------------------------------------------------------------
# Beyond accuracy
# --------------------------------------------------------------------------------------------------------------


def _suffix(name: str, k: int | None) -> str:
    return name if k is None else metric_key(name, k)


def _truncated(run: Run, k: int | None) -> dict[str, list[str]]:
    return {q: list(items)[:k] if k is not None else list(items) for q, items in run.items()}


def catalog_coverage(run: Run, catalog_ids: Iterable[str], *, k: int | None = None) -> dict[str, float]:
    """Share of the catalogue recommended at least once: low coverage means a few articles soak up every slot."""
    catalog = catalog_ids if isinstance(catalog_ids, (set, frozenset)) else set(catalog_ids)
    if not catalog:
        return {}
    shown = {item for items in _truncated(run, k).values() for item in items if item in catalog}
    return {_suffix("catalog_coverage", k): len(shown) / len(catalog)}


def intra_list_diversity(run: Run, vectors: Mapping[str, np.ndarray], *, k: int | None = None) -> dict[str, float]:
    """Mean over lists of the mean pairwise cosine distance (1 - cos) between recommended items' vectors.

    Items without a vector (or with a zero vector) are skipped; lists with fewer than two such items have no
    pairs and are left out of the mean. Vectors are normalised here, so callers may pass raw embeddings.
    """
    per_list = []
    for items in _truncated(run, k).values():
        rows = []
        for item in dict.fromkeys(items):
            vector = vectors.get(item)
            if vector is None:
                continue
            vector = np.asarray(vector, dtype=np.float64).ravel()
            norm = np.linalg.norm(vector)
            if norm > 0 and np.isfinite(norm):
                rows.append(vector / norm)
        if len(rows) < 2:
            continue
        matrix = np.vstack(rows)
        sims = matrix @ matrix.T
        upper = sims[np.triu_indices(len(rows), k=1)]
        per_list.append(float(np.mean(1.0 - upper)))
    if not per_list:
        return {}
    return {_suffix("intra_list_diversity", k): float(np.mean(per_list))}


def novelty(run: Run, popularity: Mapping[str, int | float], *, k: int | None = None) -> dict[str, float]:
    """Mean self-information ``-log2(share)`` of recommended items, share = popularity / total popularity.

    Averaged within each list, then over lists. Items never seen (missing or 0) are scored as if read once, so one
    brand-new article does not make the metric infinite; higher means less mainstream recommendations.
    """
    total = float(sum(v for v in popularity.values() if v > 0))
    if total <= 0:
        return {}
    per_list = []
    for items in _truncated(run, k).values():
        if not items:
            continue
        info = [-math.log2(max(float(popularity.get(item, 0) or 0), 1.0) / max(total, 1.0)) for item in items]
        per_list.append(float(np.mean(info)))
    if not per_list:
        return {}
    return {_suffix("novelty", k): float(np.mean(per_list))}


def freshness(run: Run, published: Mapping[str, Any], *, k: int | None = None) -> dict[str, float]:
    """Median and mean absolute publication gap in days between each source and its recommendations.

    ``published`` maps ids to aware datetimes (or None). Pairs where either date is missing are skipped; the
    number of dated pairs is reported so a tiny sample is visible. Pooled over all (source, item) pairs.
    """
    gaps = []
    for query_id, items in _truncated(run, k).items():
        source = published.get(query_id)
        if source is None:
            continue
        for item in items:
            when = published.get(item)
            if when is not None:
                gaps.append(abs((when - source).total_seconds()) / 86400.0)
    if not gaps:
        return {}
    return {
        _suffix("freshness_median_days", k): float(np.median(gaps)),
        _suffix("freshness_mean_days", k): float(np.mean(gaps)),
        _suffix("freshness_pairs", k): float(len(gaps)),
    }


def near_duplicate_rate(
    run: Run, is_near_duplicate: Callable[[str, str], bool], *, k: int | None = None
) -> dict[str, float]:
    """Share of recommended items (pooled) for which ``is_near_duplicate(source_id, item_id)`` holds.

    Near-duplicates (re-filed wire copies, corrections) look maximally "related" but give the reader nothing new.
    The source itself is never asked about: :func:`self_recommendation_rate` counts that fault.
    """
    total = hits = 0
    for query_id, items in _truncated(run, k).items():
        for item in items:
            total += 1
            if item != query_id and is_near_duplicate(query_id, item):
                hits += 1
    if not total:
        return {}
    return {_suffix("near_duplicate_rate", k): hits / total}


def duplicate_pair_rate(
    run: Run, is_near_duplicate: Callable[[str, str], bool], *, k: int | None = None
) -> dict[str, float]:
    """Share of lists holding two items that are near-duplicates of each other (the same story twice in a box)."""
    lists = _truncated(run, k)
    if not lists:
        return {}
    bad = 0
    for items in lists.values():
        if any(is_near_duplicate(a, b) for x, a in enumerate(items) for b in items[x + 1 :]):
            bad += 1
    return {_suffix("duplicate_pair_rate", k): bad / len(lists)}


def self_recommendation_rate(run: Run, *, k: int | None = None) -> dict[str, float]:
    """Share of lists that recommend the source article itself (should be exactly 0)."""
    lists = _truncated(run, k)
    if not lists:
        return {}
    return {_suffix("self_recommendation_rate", k): sum(q in items for q, items in lists.items()) / len(lists)}


def percentiles(values: Iterable[float], *, digits: int | None = None) -> dict[str, float]:
    """``{"n", "p50", "p95", "p99", "mean"}`` of a sample (numpy linear interpolation); ``{}`` when empty.
    The one summary of latencies used by evaluation, benchmarks and the chaos harnesses."""
    data = np.asarray(list(values), dtype=np.float64)
    if data.size == 0:
        return {}
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    out = {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(data.mean())}
    if digits is not None:
        out = {k: round(v, digits) for k, v in out.items()}
    return {"n": int(data.size), **out}


def latency_percentiles(times_ms: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of per-query latencies in milliseconds, keyed for an evaluation's results."""
    summary = percentiles(times_ms)
    return {f"latency_{k}_ms": v for k, v in summary.items() if k != "n"}
