"""Offline evaluation of related-article recommendations: ground truth, metrics, baselines, comparison, reports.

Typical notebook use::

    from recommender.evaluation import load_qrels, TfidfSystem, evaluate, write_report
    qrels = load_qrels("qrels.tsv")
    result = evaluate([engine_system, TfidfSystem(articles)], qrels, articles=articles)
    print(format_table(result))
    write_report(result, "reports/2024-05-01")
"""

from .baselines import (
    EmbeddingSystem,
    FunctionSystem,
    MostRecentSystem,
    RandomSystem,
    RecentSameSectionSystem,
    System,
    TfidfSystem,
    article_text,
)
from .compare import Comparison, compare_scores, compare_to_baseline
from .formatting import format_comparisons, format_table
from .groundtruth import GroundTruthError, Qrels, UnknownIds, qrels_summary, unknown_ids
from .labels import GRADINGS, qrels_from_labels
from .metrics import (
    GRADE_SCALE,
    NDCG_GAINS,
    RANKING_METRICS,
    catalog_coverage,
    duplicate_pair_rate,
    freshness,
    intra_list_diversity,
    latency_percentiles,
    mean_metrics,
    metric_curves,
    metric_key,
    near_duplicate_rate,
    novelty,
    parse_metric_key,
    per_query_ranking_metrics,
    per_query_ranking_metrics_many,
    ranking_metrics,
    self_recommendation_rate,
)
from .qrels import QRELS_HEADER, load_qrels, save_qrels
from .report import render_html, render_markdown, write_report
from .result import EvaluationResult
from .runner import EvaluationError, curve_cutoffs, evaluate
from .sessions import SESSION_GRADINGS, SessionStats, qrels_from_sessions

__all__ = [
    "format_comparisons",
    "QRELS_HEADER",
    # ground truth
    "Qrels",
    "GroundTruthError",
    "GRADINGS",
    "SESSION_GRADINGS",
    "SessionStats",
    "UnknownIds",
    "load_qrels",
    "save_qrels",
    "qrels_from_labels",
    "qrels_from_sessions",
    "unknown_ids",
    "qrels_summary",
    # metrics
    "RANKING_METRICS",
    "GRADE_SCALE",
    "NDCG_GAINS",
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
    # systems
    "System",
    "FunctionSystem",
    "RandomSystem",
    "MostRecentSystem",
    "RecentSameSectionSystem",
    "TfidfSystem",
    "EmbeddingSystem",
    "article_text",
    # comparison
    "Comparison",
    "compare_scores",
    "compare_to_baseline",
    # running and reporting
    "EvaluationError",
    "EvaluationResult",
    "evaluate",
    "curve_cutoffs",
    "write_report",
    "format_table",
    "render_markdown",
    "render_html",
]
