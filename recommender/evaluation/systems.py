"""The systems an evaluation compares: the engine under any ranking configuration, and the baselines.

Names are stable keys of the report: ``default``, ``tfidf``, ``embedding``, ``recent``,
``recent-same-section``, ``random``, and the ``name`` of each configuration file.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..dedup import shingle_jaccard, story_shingles
from ..engine import Recommender
from ..ranking import RankingConfig
from .baselines import (
    EmbeddingSystem,
    FunctionSystem,
    MostRecentSystem,
    RandomSystem,
    RecentSameSectionSystem,
    System,
    TfidfSystem,
)
from .boxes import BoxItem

__all__ = ["BASELINES", "engine_system", "make_systems", "indexed_articles", "near_duplicate_predicate"]

BASELINES = ("tfidf", "embedding", "recent", "recent-same-section", "random")


def indexed_articles(rec: Recommender):
    """The articles of the loaded version (without live changes), in index order."""
    return [rec.catalog.articles[i] for i in range(rec.catalog.base_count)]


def engine_system(rec: Recommender, config: RankingConfig, name: str | None = None) -> System:
    """The real engine under ``config``: the same code path the service runs."""
    overrides = config.to_dict()
    overrides.pop("name", None)

    def recommend(query_id: str, k: int) -> list[str]:
        return [r.article.id for r in rec.related(query_id, k, **overrides)]

    def recommend_box(query_id: str, k: int, *, floor: bool | float = True) -> list[BoxItem]:
        """The box at the configured floor (True), unfloored (False) or at the given floor (a number)."""
        if floor is True:
            options = overrides
        else:
            options = {**overrides, "min_relevance": 0.0 if floor is False else float(floor), "fill": "none"}
        return [BoxItem(r.article.id, r.relevance, r.fallback) for r in rec.related(query_id, k, **options)]

    system = FunctionSystem(name or config.name, recommend)
    system.recommend_box = recommend_box  # type: ignore[attr-defined]
    return system


def make_systems(
    rec: Recommender, names: Sequence[str], configs: Sequence[RankingConfig] = (), *, seed: int = 0
) -> list[System]:
    """Systems in the order given; ``default`` is the engine with ``rec.config``. Unknown names are an error."""
    allowed = ("default", *BASELINES)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; allowed: {', '.join(allowed)} (or a --config file)")
    articles = indexed_articles(rec)
    systems: list[System] = []
    for name in names:
        if name == "default":
            systems.append(engine_system(rec, rec.config, "default"))
        elif name == "tfidf":
            systems.append(TfidfSystem(articles, name="tfidf"))
        elif name == "embedding":
            vectors = np.asarray(rec.store.vectors[: rec.catalog.base_count], dtype=np.float32)
            systems.append(EmbeddingSystem(articles, vectors, name="embedding"))
        elif name == "recent":
            systems.append(MostRecentSystem(articles, name="recent"))
        elif name == "recent-same-section":
            systems.append(RecentSameSectionSystem(articles, name="recent-same-section"))
        elif name == "random":
            systems.append(RandomSystem(articles, seed=seed, name="random"))
    for config in configs:
        systems.append(engine_system(rec, config))
    return systems


def near_duplicate_predicate(rec: Recommender, threshold: float | None = None):
    """``(a_id, b_id) -> bool``: exact Jaccard of the two articles' word 3-shingles at or above ``threshold``.

    Exact for every pair, unlike the engine, which screens with 64 MinHash values and computes the exact value
    only when the estimate is near the threshold: a pair the screen misses shows up here. Shingle sets are
    computed once per article and kept for the run."""
    limit = threshold if threshold is not None else rec.config.near_duplicate_threshold
    catalog = rec.catalog
    cache: dict[str, frozenset[bytes] | None] = {}

    def grams(article_id: str) -> frozenset[bytes] | None:
        if article_id not in cache:
            article = catalog.get(article_id)
            cache[article_id] = story_shingles(article.title, article.body) if article else None
        return cache[article_id]

    def is_duplicate(a_id: str, b_id: str) -> bool:
        a, b = grams(a_id), grams(b_id)
        return bool(a and b) and shingle_jaccard(a, b) >= limit

    return is_duplicate
