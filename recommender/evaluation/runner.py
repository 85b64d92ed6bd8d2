"""One call from systems + ground truth to every number the data team looks at.

:func:`evaluate` asks each system for a list per query (timing each call), scores the lists with the ranking
and beyond-accuracy metrics, counts what went wrong instead of hiding it (failed queries, duplicates,
self-recommendations, over-long lists, unknown ids) and compares every system with the first one.
:func:`write_report` (from :mod:`.report`) turns the result into files.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..article import Article, format_datetime
from ..errors import RecommenderError
from .baselines import System
from .compare import compare_to_baseline
from .groundtruth import qrels_summary, unknown_ids
from .metrics import (
    NDCG_GAINS,
    RANKING_METRICS,
    _check_cutoffs,
    catalog_coverage,
    duplicate_pair_rate,
    freshness,
    intra_list_diversity,
    latency_percentiles,
    metric_key,
    near_duplicate_rate,
    novelty,
    per_query_ranking_metrics_many,
    self_recommendation_rate,
)
from .result import EvaluationResult

__all__ = ["EvaluationError", "EvaluationResult", "curve_cutoffs", "evaluate"]

logger = logging.getLogger(__name__)


class EvaluationError(RecommenderError, ValueError):
    """The evaluation cannot run as asked (bad systems, no queries, a system returning non-ids)."""

    code = "evaluation_error"
    exit_code = 2


#: Keys :func:`evaluate` writes into ``result.meta`` itself; a caller's ``meta`` may not overwrite them.
_OWN_META_KEYS = frozenset(
    {
        "created_at",
        "baseline",
        "systems",
        "cutoffs",
        "curve_ks",
        "k_requested",
        "metrics",
        "relevant_grade",
        "ndcg_gains",
        "queries",
        "qrels",
        "corpus_size",
        "unknown_ids",
        "health",
        "n_bootstrap",
        "seed",
        "seconds",
    }
)


def curve_cutoffs(cutoffs: Iterable[int]) -> tuple[int, ...]:
    """The k values of metric@k curves: every k up to 20, then a log-ish ladder, always including ``cutoffs``."""
    ks = sorted({int(k) for k in cutoffs})
    top = ks[-1]
    if top <= 20:
        return tuple(range(1, top + 1))
    ladder = [k for k in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000) if k <= top]
    return tuple(sorted(set(ladder) | set(ks)))


def _check_systems(systems: Sequence[System]) -> list[System]:
    systems = list(systems)
    if not systems:
        raise EvaluationError("no systems to evaluate")
    names: list[str] = []
    for system in systems:
        name = getattr(system, "name", None)
        if not isinstance(name, str) or not name:
            raise EvaluationError(f"every system needs a non-empty string name, got {name!r} on {system!r}")
        if not callable(getattr(system, "recommend", None)):
            raise EvaluationError(f"system {name!r} has no recommend(query_id, k) method")
        if name in names:
            raise EvaluationError(f"duplicate system name {name!r}: names key every result")
        names.append(name)
    return systems


def _vector_lookup(vectors: Any, articles: Sequence[Article] | None) -> Mapping[str, np.ndarray] | None:
    if vectors is None:
        return None
    if isinstance(vectors, Mapping):
        return vectors
    matrix = np.asarray(vectors)
    if articles is None:
        raise ValueError("vectors given as an array need articles (row i is articles[i])")
    if matrix.ndim != 2 or matrix.shape[0] != len(articles):
        raise ValueError(f"vectors must have shape (len(articles)={len(articles)}, dim), got {matrix.shape}")
    return {article.id: matrix[row] for row, article in enumerate(articles)}


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    interactive = enabled and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(total=total, disable=not interactive, desc="evaluating", unit="query", leave=False)


def _collect(
    system: System, queries: Sequence[str], k: int, corpus: set[str] | None, bar: Any
) -> tuple[dict[str, list[str]], dict[str, float], dict[str, int]]:
    """Ask one system for every query; returns the cleaned run, per-query latency and the fault counts."""
    run: dict[str, list[str]] = {}
    latency: dict[str, float] = {}
    health = {
        "failed_queries": 0,
        "empty_lists": 0,
        "over_k_lists": 0,
        "duplicate_items": 0,
        "self_recommendations": 0,
        "unknown_recommended_ids": 0,
    }
    first_error: str | None = None
    for query_id in queries:
        start = time.perf_counter()
        try:
            raw = system.recommend(query_id, k)
        except RecommenderError as exc:
            latency[query_id] = (time.perf_counter() - start) * 1000.0
            health["failed_queries"] += 1
            first_error = first_error or f"{query_id!r}: {exc}"
            run[query_id] = []
            bar.update(1)
            continue
        latency[query_id] = (time.perf_counter() - start) * 1000.0
        if isinstance(raw, (str, bytes)) or raw is None:
            raise EvaluationError(
                f"system {system.name!r} returned {type(raw).__name__} for query {query_id!r}, expected a list of ids"
            )
        items = list(raw)
        for item in items:
            if not isinstance(item, str):
                raise EvaluationError(
                    f"system {system.name!r} returned a non-string id {item!r:.40} for query {query_id!r}"
                )
        if not items:
            health["empty_lists"] += 1
        if len(items) > k:
            health["over_k_lists"] += 1
            items = items[:k]
        unique = list(dict.fromkeys(items))
        health["duplicate_items"] += len(items) - len(unique)
        if query_id in unique:
            health["self_recommendations"] += 1
        if corpus is not None:
            health["unknown_recommended_ids"] += sum(item not in corpus for item in unique)
        run[query_id] = unique
        bar.update(1)
    if health["failed_queries"]:
        logger.warning(
            "system %r failed on %d of %d queries (first: %s)",
            system.name,
            health["failed_queries"],
            len(queries),
            first_error,
        )
    faults = {key: value for key, value in health.items() if value and key != "failed_queries"}
    if faults:
        logger.warning("system %r output faults: %s", system.name, faults)
    return run, latency, health


def evaluate(
    systems: Sequence[System],
    qrels: Mapping[str, Mapping[str, float]],
    *,
    cutoffs: Iterable[int] = (5, 10),
    articles: Sequence[Article] | None = None,
    vectors: np.ndarray | Mapping[str, np.ndarray] | None = None,
    popularity: Mapping[str, int | float] | None = None,
    near_duplicate: Callable[[str, str], bool] | None = None,
    progress: bool = True,
    queries: Iterable[str] | None = None,
    metrics: Sequence[str] = RANKING_METRICS,
    relevant_grade: float | None = None,
    gains: str = "linear",
    n_bootstrap: int = 2000,
    seed: int = 0,
    meta: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Evaluate ``systems`` on the queries of ``qrels``; the first system is the baseline of every comparison.

    Optional inputs switch on beyond-accuracy metrics: ``articles`` (catalog coverage, freshness, unknown-id
    checks), ``vectors`` (intra-list diversity; an array aligned to ``articles`` or an id -> vector mapping),
    ``popularity`` (novelty), ``near_duplicate(a_id, b_id)`` (near-duplicate rate of items against the source, and the share of lists
    holding two near-duplicates). ``queries`` restricts
    the evaluation to a subset of the qrels queries (e.g. a seeded sample). ``relevant_grade`` and ``gains`` are
    passed to :func:`per_query_ranking_metrics`. A system raising a
    :class:`RecommenderError` for a query (e.g. unknown article) gets an empty list there, counted in ``health``.

    Unknown ids are counted over all of ``qrels``, not only the evaluated ``queries``: a caller that leaves out
    queries the index cannot answer must still see them in ``meta.json`` and the reports. ``meta`` adds facts
    only the caller knows (where the ground truth came from, session-log statistics) to ``result.meta``.
    """
    systems = _check_systems(systems)
    extra_meta = dict(meta or {})
    clash = sorted(set(extra_meta) & _OWN_META_KEYS)
    if clash:
        raise ValueError(f"meta key(s) {', '.join(clash)} are set by evaluate() itself")
    if gains not in NDCG_GAINS:
        raise ValueError(f"unknown gains {gains!r}; allowed: {', '.join(NDCG_GAINS)}")
    cutoffs = _check_cutoffs(cutoffs)
    metrics = tuple(metrics)
    unknown_metrics = [m for m in metrics if m not in RANKING_METRICS]
    if unknown_metrics:
        raise ValueError(f"unknown metric {unknown_metrics[0]!r}; allowed: {', '.join(RANKING_METRICS)}")
    if not metrics:
        raise ValueError(f"no metric chosen; allowed: {', '.join(RANKING_METRICS)}")
    judged = sorted(q for q, grades in qrels.items() if any(g > 0 for g in grades.values()))
    if queries is not None:
        wanted = list(dict.fromkeys(queries))
        missing = [q for q in wanted if q not in qrels]
        if missing:
            raise EvaluationError(f"{len(missing)} requested queries have no qrels, e.g. {missing[:3]!r}")
        chosen = set(wanted)
        judged = [q for q in judged if q in chosen]
    if not judged:
        raise EvaluationError("no query with a relevant item: nothing to evaluate")
    eval_qrels = {q: qrels[q] for q in judged}
    k = max(cutoffs)
    curve_ks = curve_cutoffs(cutoffs)
    all_ks = tuple(sorted(set(curve_ks) | set(cutoffs)))

    corpus = {article.id for article in articles} if articles is not None else None
    unknown = unknown_ids(qrels, corpus) if corpus is not None else None
    lookup = _vector_lookup(vectors, articles)
    published = {a.id: a.published_at for a in articles if a.published_at is not None} if articles is not None else {}

    means: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    curves: dict[str, dict[str, dict[int, float]]] = {}
    beyond: dict[str, dict[str, float]] = {}
    latencies: dict[str, dict[str, float]] = {}
    runs: dict[str, dict[str, list[str]]] = {}
    health: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    with _progress(len(systems) * len(judged), progress) as bar:
        for system in systems:
            bar.set_postfix_str(system.name)
            runs[system.name], latencies[system.name], health[system.name] = _collect(system, judged, k, corpus, bar)
    all_scores = per_query_ranking_metrics_many(
        runs, eval_qrels, all_ks, metrics, relevant_grade=relevant_grade, gains=gains
    )
    keep = [metric_key(name, c) for name in metrics for c in cutoffs]
    for system in systems:
        name_ = system.name
        run = runs[name_]
        scores = all_scores[name_]
        per_query[name_] = {q: {key: s[key] for key in keep} for q, s in scores.items()}
        curves[name_] = {
            name: {c: float(np.mean([s[metric_key(name, c)] for s in scores.values()])) for c in curve_ks}
            for name in metrics
        }
        extra: dict[str, float] = {}
        if corpus is not None:
            extra.update(catalog_coverage(run, corpus, k=k))
        if lookup is not None:
            extra.update(intra_list_diversity(run, lookup, k=k))
        if popularity is not None:
            extra.update(novelty(run, popularity, k=k))
        if published:
            extra.update(freshness(run, published, k=k))
        if near_duplicate is not None:
            extra.update(near_duplicate_rate(run, near_duplicate, k=k))
            extra.update(duplicate_pair_rate(run, near_duplicate, k=k))
        extra.update(self_recommendation_rate(run, k=k))
        beyond[name_] = extra
        means[name_] = {
            **{key: float(np.mean([s[key] for s in per_query[name_].values()])) for key in keep},
            **extra,
            **latency_percentiles(latencies[name_].values()),
        }
    comparisons = compare_to_baseline(
        per_query,
        baseline=systems[0].name,
        metrics=[metric_key(n, c) for n in metrics for c in cutoffs],
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    run_meta: dict[str, Any] = {
        "created_at": format_datetime(datetime.now(UTC).replace(microsecond=0)),
        "baseline": systems[0].name,
        "systems": [s.name for s in systems],
        "cutoffs": list(cutoffs),
        "curve_ks": list(curve_ks),
        "k_requested": k,
        "metrics": list(metrics),
        "relevant_grade": relevant_grade,
        "ndcg_gains": gains,
        "queries": len(judged),
        "qrels": qrels_summary(eval_qrels),
        "corpus_size": len(corpus) if corpus is not None else None,
        "unknown_ids": unknown.to_dict() if unknown is not None else None,
        "health": health,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 3),
    }
    run_meta.update(extra_meta)
    return EvaluationResult(
        systems=[s.name for s in systems],
        queries=judged,
        cutoffs=cutoffs,
        curve_ks=curve_ks,
        means=means,
        per_query=per_query,
        curves=curves,
        beyond_accuracy=beyond,
        latencies_ms=latencies,
        runs=runs,
        health=health,
        unknown=unknown,
        comparisons=comparisons,
        meta=run_meta,
    )
