"""An offline evaluation run end to end, as ``recommender evaluate`` does it: open (or build) the index, read the
ground truth, pick the queries, make the systems, evaluate, write the report. The CLI only parses and prints."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from index.persist import atomic_write_bytes

from ..article import Article
from ..engine import Recommender
from ..errors import ConfigurationError
from ..loading import load_articles
from ..ranking import RankingConfig
from ..settings import Settings
from .boxes import best_floor, box_metrics, box_runs, calibration, floored
from .labels import qrels_from_labels
from .qrels import Qrels, load_qrels
from .report import write_report
from .runner import EvaluationResult, evaluate
from .sessions import qrels_from_sessions
from .sparse import sparse_stories, story_key
from .systems import indexed_articles, make_systems, near_duplicate_predicate

__all__ = [
    "GroundTruth",
    "SparseStories",
    "evaluate_boxes",
    "floor_curve",
    "ground_truth_qrels",
    "run_offline_evaluation",
]


@dataclass(frozen=True)
class GroundTruth:
    """Exactly one of: a qrels file, an article label field (with its grading), a sessions file."""

    qrels: Path | None = None
    label_field: str | None = None
    grading: str = "exact"
    sessions: Path | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.qrels, self.label_field, self.sessions)) != 1:
            raise ConfigurationError(
                "give exactly one ground truth: --qrels FILE, --label-field NAME or --sessions FILE"
            )


def ground_truth_qrels(
    truth: GroundTruth, labelled: Sequence[Article], corpus_ids: Sequence[str]
) -> tuple[Qrels, Any, dict[str, Any]]:
    """The judgments ``truth`` names, as qrels (sessions also give the popularity of each article), and how they
    were made (for the report)."""
    popularity = None
    meta: dict[str, Any]
    if truth.qrels is not None:
        qrels = load_qrels(truth.qrels)
        meta = {"ground_truth": {"kind": "qrels", "source": str(truth.qrels)}}
    elif truth.label_field is not None:
        qrels = qrels_from_labels(labelled, truth.label_field, grading=truth.grading)
        meta = {"ground_truth": {"kind": "label_field", "source": truth.label_field, "grading": truth.grading}}
    else:
        assert truth.sessions is not None
        qrels, popularity, stats = qrels_from_sessions(truth.sessions, list(corpus_ids))
        examples = list(stats.unknown_ids[:10])
        meta = {
            "ground_truth": {"kind": "sessions", "source": str(truth.sessions)},
            "sessions": {**stats.to_dict(), "unknown_id_examples": examples},
        }
    return qrels, popularity, meta


@dataclass
class OfflineRun:
    result: EvaluationResult
    files: dict[str, Path] = field(default_factory=dict)


def run_offline_evaluation(
    settings: Settings,
    truth: GroundTruth,
    report_dir: Path,
    *,
    articles: Sequence[Path] = (),
    systems: Sequence[str] = ("default", "tfidf", "embedding", "recent", "recent-same-section", "random"),
    configs: Sequence[Path] = (),
    cutoffs: Sequence[int] = (5, 10),
    sample: int | None = None,
    seed: int = 0,
    build: bool = False,
    sparse: SparseStories | None = None,
    box_k: int = 6,
    notice: Callable[[str], None] = lambda _: None,
) -> OfflineRun:
    """Evaluate the index in ``settings.index_dir`` (built first from ``articles`` when ``build``; with ``sparse``,
    from the sparse-story subset of them, see :mod:`.sparse`)."""
    loaded = load_articles(articles, title_from_body=settings.title_from_body).articles if articles else None
    if sparse is not None:
        if loaded is None:
            raise ConfigurationError("--sparse-stories needs --articles (the corpus to thin out)")
        loaded = sparse_stories(loaded, sparse.field, sparse.seed)
        if not loaded:
            raise ConfigurationError(f"--sparse-stories: no article has a {sparse.field!r} label")
        export = Path(settings.index_dir) / "sparse-export.jsonl"
        export.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(
            export, b"".join(json.dumps(a.to_dict(), ensure_ascii=False).encode() + b"\n" for a in loaded)
        )
        articles = [export]
        notice(f"sparse stories (seed {sparse.seed}, by {sparse.field}): {len(loaded)} articles kept")
    if build:
        from ..build import build_index

        notice(f"indexing {len(articles)} file(s) into {settings.index_dir} (cached; only changes are re-embedded)")
        build_index(articles, settings, progress=True)
    rec = Recommender.open(
        settings.index_dir,
        config=settings.ranking_config(),
        verify_digests=settings.verify_digests,
        relevance=settings.relevance(),
    )
    corpus = indexed_articles(rec)
    labelled = loaded if loaded is not None else corpus
    qrels, popularity, meta = ground_truth_qrels(truth, labelled, [a.id for a in corpus])
    # Queries not in the index cannot be asked; evaluate() still counts them (meta.json, reports) as unknown.
    queries = sorted(q for q in qrels if q in rec)
    if not queries:
        raise ConfigurationError("no ground-truth query is in the index")
    if sample and sample < len(queries):
        queries = sorted(random.Random(seed).sample(queries, sample))
    names = list(systems)
    if "default" in names:  # the reference every comparison is made against
        names.insert(0, names.pop(names.index("default")))
    chosen = make_systems(rec, names, [RankingConfig.from_file(c) for c in configs], seed=seed)
    vectors = np.asarray(rec.store.vectors[: rec.catalog.base_count], dtype=np.float32)
    result = evaluate(
        chosen, qrels, cutoffs=tuple(cutoffs), articles=corpus, vectors=vectors, popularity=popularity,
        near_duplicate=near_duplicate_predicate(rec), queries=queries, seed=seed, meta=meta,
    )  # fmt: skip
    box_queries = _box_queries(truth, qrels, labelled, rec)
    if sample and sample < len(box_queries):
        box_queries = sorted(random.Random(seed).sample(box_queries, sample))
    result.boxes = evaluate_boxes(chosen, qrels, box_queries, box_k, in_corpus=rec.__contains__)
    result.meta["boxes"] = {"k": box_k, "queries": len(box_queries), "sparse": sparse.to_dict() if sparse else None}
    files = write_report(result, report_dir)
    return OfflineRun(result, files)


@dataclass(frozen=True)
class SparseStories:
    """``--sparse-stories SEED`` (stories told by ``field``)."""

    seed: int
    field: str = "story_id"

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "field": self.field}


def _box_queries(truth: GroundTruth, qrels: dict, labelled: list, rec: Recommender) -> list[str]:
    """Every labelled article of the corpus: also those with no related article (their right box is empty)."""
    if truth.label_field is not None:
        ids = {a.id for a in labelled if story_key(a, truth.label_field) is not None}
    elif truth.qrels is not None:
        ids = set(qrels) | {d for grades in qrels.values() for d in grades}
    else:
        ids = set(qrels)
    return sorted(i for i in ids if i in rec)


#: Floors the evaluation reruns the engine at: what a site gives up and gains by moving ``min_relevance``.
CURVE_FLOORS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def floor_curve(
    system: Any, qrels: dict, queries: list[str], k: int, *, in_corpus: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """The engine's boxes at each of :data:`CURVE_FLOORS` (rerun, not cut after the fact: a floor lets a lower
    ranked item above it into the box): unrelated share, same-story recall and box length per floor."""
    curve = []
    for value in CURVE_FLOORS:
        runs = {q: system.recommend_box(q, k, floor=value) for q in queries if in_corpus(q)}
        m = box_metrics(runs, qrels, k, corpus=in_corpus)
        curve.append(
            {
                "floor": value,
                **{
                    name: m[f"{name}@{k}"]
                    for name in ("unrelated_shown", "same_story_recall", "mean_box_length", "empty_boxes")
                },
            }
        )
    return curve


def evaluate_boxes(
    systems: Sequence[Any], qrels: dict, queries: list[str], k: int, *, in_corpus: Callable[[str], bool]
) -> dict[str, dict[str, Any]]:
    """Box metrics per system: the engine at its configured floor, baselines with scores at their best floor."""
    out = {}
    for system in systems:
        runs = box_runs(system, queries, k)
        scored = not hasattr(system, "recommend_box") and hasattr(system, "recommend_scored")
        floor = best_floor(runs, qrels) if scored else None
        metrics = box_metrics(floored(runs, floor), qrels, k, corpus=in_corpus)
        metrics["floor"] = floor if scored else ("configured" if hasattr(system, "recommend_box") else None)
        if hasattr(system, "recommend_box"):  # calibration of the relevance, over the unfloored boxes
            unfloored = {q: system.recommend_box(q, k, floor=False) for q in queries if in_corpus(q)}
            metrics["calibration"] = calibration(unfloored, qrels)
            metrics["floor_curve"] = floor_curve(system, qrels, queries, k, in_corpus=in_corpus)
        out[system.name] = metrics
    return out
