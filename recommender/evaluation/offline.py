"""An offline evaluation run end to end, as ``recommender evaluate`` does it: open (or build) the index, read the
ground truth, pick the queries, make the systems, evaluate, write the report. The CLI only parses and prints."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..engine import Recommender
from ..errors import ConfigurationError
from ..loading import load_articles
from ..ranking import RankingConfig
from ..settings import Settings
from .labels import qrels_from_labels
from .qrels import load_qrels
from .report import write_report
from .runner import EvaluationResult, evaluate
from .sessions import qrels_from_sessions
from .systems import indexed_articles, make_systems, near_duplicate_predicate

__all__ = ["GroundTruth", "run_offline_evaluation"]


@dataclass(frozen=True)
class GroundTruth:
    """Exactly one of: a qrels file, an article label field (with its grading), a sessions file."""

    qrels: Path | None = None
    label_field: str | None = None
    grading: str = "exact"
    sessions: Path | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.qrels, self.label_field, self.sessions)) != 1:
            raise ConfigurationError("give exactly one ground truth: --qrels FILE, --label-field NAME or --sessions FILE")


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
    notice: Callable[[str], None] = lambda _: None,
) -> OfflineRun:
    """Evaluate the index in ``settings.index_dir`` (built first from ``articles`` when ``build``)."""
    if build:
        from ..build import build_index

        notice(f"indexing {len(articles)} file(s) into {settings.index_dir} (cached; only changes are re-embedded)")
        build_index(articles, settings, progress=True)
    rec = Recommender.open(settings.index_dir, config=settings.ranking_config(), verify_digests=settings.verify_digests)
    corpus = indexed_articles(rec)
    labelled = load_articles(articles, title_from_body=settings.title_from_body).articles if articles else corpus
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
        qrels, popularity, stats = qrels_from_sessions(truth.sessions, [a.id for a in corpus])
        examples = list(stats.unknown_ids[:10])
        meta = {
            "ground_truth": {"kind": "sessions", "source": str(truth.sessions)},
            "sessions": {**stats.to_dict(), "unknown_id_examples": examples},
        }
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
    files = write_report(result, report_dir)
    return OfflineRun(result, files)
