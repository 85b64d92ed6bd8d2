"""Fitting the calibrated relevance model (:mod:`.relevance`) from judgments: ``recommender calibrate``.

Training pairs are what the engine will score: for each judged query, its first-round candidates (copies of the
query left out: they are never shown), labelled related when the judgments grade them above 0 (a candidate
missing from the judgments counts as unrelated, the TREC convention, unless ``judged`` says its relevance is
unknown). Logistic regression on :data:`~.relevance.FEATURES`, then ``sklearn.calibration`` (isotonic by default)
on cross-validated decision values. Folds group queries by story (connected components of the judgments), so
a story's articles never sit on both sides of a split: otherwise the report would flatter the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .engine import Recommender
from .errors import ConfigurationError
from .relevance import FEATURES, RelevanceModel, pair_features

if TYPE_CHECKING:
    from .evaluation.offline import GroundTruth
    from .settings import Settings

__all__ = ["Pairs", "calibrate_index", "fit_relevance", "labelled_pairs", "story_groups"]

Judgments = Mapping[str, Mapping[str, float]]


@dataclass
class Pairs:
    """Feature rows with their label (related or not) and the story group of their query."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    queries: int

    @classmethod
    def concat(cls, parts: Sequence[Pairs]) -> Pairs:
        """Pairs of several indexes (e.g. a corpus and its sparse samples); groups keep their names apart only when
        the callers' group keys do (:func:`story_groups` of the same judgments gives the same keys)."""
        if not parts:
            return cls(np.zeros((0, len(FEATURES))), np.zeros(0, dtype=bool), np.zeros(0, dtype=object), 0)
        return cls(
            np.vstack([p.X for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.groups for p in parts]),
            sum(p.queries for p in parts),
        )


def story_groups(judgments: Judgments) -> dict[str, str]:
    """Each judged id's group: the connected component of "judged related" links (union-find), named by its
    smallest id. A story's articles (and, with graded topics, a topic's) share one group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for query, grades in judgments.items():
        find(query)
        for doc, grade in grades.items():
            if grade and grade > 0:  # every graded link, so a topic's stories stay on one side of a split
                a, b = find(query), find(doc)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in list(parent)}


def labelled_pairs(
    rec: Recommender,
    judgments: Judgments,
    *,
    queries: Iterable[str] | None = None,
    judged: Callable[[str], bool] | None = None,
    groups: Mapping[str, str] | None = None,
    min_grade: float = 1.0,
) -> Pairs:
    """Training pairs from ``rec``'s candidates for every judged query it holds (or ``queries``); a pair is related
    when its grade is at least ``min_grade`` (ecbplus-dev: 2 = same story, 1 = same topic)."""
    groups = groups if groups is not None else story_groups(judgments)
    asked = sorted(q for q in (judgments if queries is None else queries) if q in rec)
    threshold = rec.config.near_duplicate_threshold
    ids = rec.catalog.articles.ids
    xs, ys, gs = [], [], []
    for query in asked:
        source, query_lex, candidates = rec.first_round(query)
        if len(candidates.positions) == 0:
            continue
        copy = (candidates.signatures == source.signature[None, :]).mean(axis=1) >= threshold
        grades = judgments.get(query, {})
        keep = ~copy
        if judged is not None:
            keep &= np.fromiter(
                (judged(ids[p]) for p in candidates.positions), dtype=bool, count=len(candidates.positions)
            )
        rows = np.flatnonzero(keep)
        if not len(rows):
            continue
        xs.append(pair_features(candidates, query_lex)[rows])
        ys.append(
            np.array([(grades.get(ids[int(candidates.positions[r])]) or 0) >= min_grade for r in rows], dtype=bool)
        )
        gs.append(np.full(len(rows), groups.get(query, query), dtype=object))
    if not xs:
        return Pairs.concat([])
    return Pairs(np.vstack(xs), np.concatenate(ys), np.concatenate(gs), len(asked))


def _base_model() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))


def _calibrated(method: str, groups: np.ndarray, folds: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GroupKFold

    splits = list(GroupKFold(n_splits=folds).split(np.zeros(len(groups)), groups=groups))
    return CalibratedClassifierCV(_base_model(), method=method, cv=splits, ensemble=False)


def fit_relevance(
    pairs: Pairs, *, method: str = "isotonic", folds: int = 5, meta: Mapping[str, Any] | None = None
) -> tuple[RelevanceModel, dict[str, Any]]:
    """The fitted model and its training report (cross-validated calibration: ECE, Brier, AUC, reliability
    table), which is also stored in the model file's ``training`` field."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    from .evaluation.boxes import reliability

    if method not in ("isotonic", "sigmoid"):
        raise ConfigurationError(f"calibration method must be isotonic or sigmoid, got {method!r}")
    related = int(pairs.y.sum())
    if related == 0 or related == len(pairs.y):
        raise ConfigurationError(
            f"calibration needs related and unrelated pairs: got {related} related of {len(pairs.y)} "
            "(do the judgments name articles of this index?)"
        )
    n_groups = len(set(pairs.groups.tolist()))
    folds = min(folds, n_groups)
    if folds < 2:
        raise ConfigurationError(f"calibration needs judged queries from at least 2 stories, got {n_groups}")
    y = pairs.y.astype(int)
    predicted = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(pairs.X, y, groups=pairs.groups):
        inner = min(folds, len(set(pairs.groups[train].tolist())))
        if inner < 2 or y[train].min() == y[train].max():
            raise ConfigurationError("too few judged stories to cross-validate the calibration; add judgments")
        model = _calibrated(method, pairs.groups[train], inner).fit(pairs.X[train], y[train])
        predicted[test] = model.predict_proba(pairs.X[test])[:, 1]
    final = _calibrated(method, pairs.groups, folds).fit(pairs.X, y)
    report = {
        "pairs": len(y),
        "related_share": round(related / len(y), 4),
        "queries": pairs.queries,
        "stories": n_groups,
        "folds": folds,
        "method": method,
        "cross_validated": {**reliability(predicted, y), "auc": round(float(roc_auc_score(y, predicted)), 4)},
    }
    return _to_model(final, {**(meta or {}), "training": report}), report


def _to_model(fitted: Any, meta: dict[str, Any]) -> RelevanceModel:
    calibrated = fitted.calibrated_classifiers_[0]
    scaler, logistic = calibrated.estimator[0], calibrated.estimator[-1]
    calibrator = calibrated.calibrators[0]
    if hasattr(calibrator, "X_thresholds_"):
        calibration = {"method": "isotonic", "x": [float(v) for v in calibrator.X_thresholds_],
                       "y": [round(float(v), 6) for v in calibrator.y_thresholds_]}  # fmt: skip
    else:
        calibration = {"method": "sigmoid", "a": float(calibrator.a_), "b": float(calibrator.b_)}
    return RelevanceModel(
        mean=tuple(float(v) for v in scaler.mean_),
        scale=tuple(float(v) for v in scaler.scale_),
        coef=tuple(float(v) for v in logistic.coef_[0]),
        intercept=float(logistic.intercept_[0]),
        calibration=calibration,
        meta=meta,
    )


def calibrate_index(
    settings: Settings,
    truth: GroundTruth,
    out: Path,
    *,
    method: str = "isotonic",
    folds: int = 5,
    min_grade: float | None = None,
) -> dict[str, Any]:
    """``recommender calibrate``: fit a relevance model on the judgments of the index in ``settings.index_dir``
    and write it to ``out`` (atomically). ``min_grade`` None: the top grade of a qrels file (ecbplus-dev: 2, the
    same story), 1 for a label field (the same label) or sessions (read together at least once)."""
    from .evaluation.labels import labelled_ids
    from .evaluation.offline import ground_truth_qrels
    from .evaluation.systems import indexed_articles

    rec = Recommender.open(
        settings.index_dir, config=settings.ranking_config(), verify_digests=settings.verify_digests, relevance=None
    )
    corpus = indexed_articles(rec)
    judgments, _, meta = ground_truth_qrels(truth, corpus, [a.id for a in corpus])
    if not any(q in rec for q in judgments):
        raise ConfigurationError("no judged article is in the index (do the judgments name this index's ids?)")
    if min_grade is None:
        grades = [g for row in judgments.values() for g in row.values() if g]
        min_grade = float(max(grades)) if truth.qrels is not None and grades else 1.0
    judged = None
    if truth.label_field is not None:  # an unlabelled article's relation to anything is unknown, not "unrelated"
        labelled = labelled_ids(corpus, truth.label_field)
        judged = labelled.__contains__
    pairs = labelled_pairs(rec, judgments, judged=judged, min_grade=min_grade)
    model, report = fit_relevance(
        pairs,
        method=method,
        folds=folds,
        meta={**meta, "min_grade": min_grade, "index_version": rec.version, "embedding_model": rec.manifest.model},
    )
    model.save(out)
    return report
