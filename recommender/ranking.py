"""Ranking: from candidate articles to the related box. Pure functions over arrays, no I/O.

Order of operations, each documented with its measurement in the README (Ranking):
eligibility (never the source, filters, window) -> hybrid relevance (semantic + lexical) ->
freshness decay -> greedy selection that drops near-duplicates and applies MMR diversity -> reasons.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Callable

import numpy as np
from pydantic import Field, ValidationError, field_validator
from pydantic.dataclasses import dataclass as validated_dataclass

from .candidates import Candidates, Filters, RankedItem, Source
from .errors import ConfigurationError
from .fusion import FUSIONS, fusion
from .options import Days, Fill, Share

__all__ = ["Candidates", "Filters", "RankedItem", "Ranking", "RankingConfig", "Source", "rank"]

_DAY = 86400.0
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


@validated_dataclass(frozen=True)
class RankingConfig:
    """One named ranking configuration. Defaults were chosen on ecbplus-dev and confirmed on reuters21578.

    Fields shared with request options (diversity, freshness, window) use the same types and limits as
    :mod:`recommender.options`; any invalid value raises :class:`ConfigurationError` naming the field."""

    name: str = "default"
    #: weight of embedding cosine in the fused score; the lexical (TF-IDF) cosine gets ``1 - semantic_weight``
    semantic_weight: Share = 0.2
    #: a name in :data:`recommender.fusion.FUSIONS`: ``weighted`` (weighted sum of cosines, then feedback) or
    #: ``rrf`` (reciprocal-rank fusion of the two candidate lists), or one registered with ``register_fusion``
    fusion: str = "weighted"
    rrf_k: Annotated[int, Field(ge=0)] = 60
    #: candidates taken from each retriever before re-ranking (the build precomputes this many per article)
    candidates: Annotated[int, Field(ge=1)] = 50
    #: pseudo-relevance feedback: also score each candidate by its fused similarity to the top
    #: ``prf_docs`` candidates, times ``prf_weight`` (the cluster hypothesis: same-event articles resemble
    #: each other more than look-alikes do); 0 turns it off
    prf_docs: Annotated[int, Field(ge=0)] = 4
    prf_weight: _NonNegative = 3.0
    #: feedback assumes the top candidates are related, which holds when a story has many follow-ups and amplifies
    #: noise when it has none (a site's long tail): it runs only when at least this many candidates (not copies of
    #: the source) have a calibrated relevance of at least ``feedback_confidence``; 0 = always (issue 13's note)
    feedback_min_related: Annotated[int, Field(ge=0)] = 10
    feedback_confidence: Share = 0.5
    #: estimated Jaccard of word 3-shingles at or above which two articles are the same story re-published
    near_duplicate_threshold: Annotated[float, Field(gt=0, le=1)] = 0.7
    #: 0 = pure relevance; higher trades relevance for variety (MMR with lambda = 1 - diversity)
    diversity: Share = 0.0
    #: halve the score of an article this many days away from the source; None = no decay
    freshness_half_life_days: Days | None = None
    #: only articles published within this many days of the source; None = no window
    window_days: Days | None = None
    #: added to the fused score of a candidate in the source's section
    same_section_boost: _NonNegative = 0.0
    #: the relevance floor: items whose calibrated relevance is lower are not shown (0 shows everything ranked);
    #: 0.5 = shown only when more likely related than not (README, Evaluation: boxes)
    min_relevance: Share = 0.5
    #: how a box the floor left short is filled: none, section_recent or recent (items marked fallback)
    fill: Fill = "none"

    @field_validator("fusion")
    @classmethod
    def _known_fusion(cls, value: str) -> str:
        if value not in FUSIONS:
            raise ValueError(f"must be one of {', '.join(FUSIONS)}, got {value!r}")
        return value

    @classmethod
    def create(cls, **values: Any) -> RankingConfig:
        """Like the constructor, with a :class:`ConfigurationError` naming the field for an invalid value."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown ranking option(s): {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> RankingConfig:
        clean = {
            k: v for k, v in overrides.items() if v is not None or k in ("freshness_half_life_days", "window_days")
        }
        return type(self).create(**{**asdict(self), **clean})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_file(cls, path: Path | str) -> RankingConfig:
        """A JSON (or TOML) file holding any subset of the fields; ``name`` defaults to the file stem."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"{path}: cannot read ranking configuration: {exc.strerror}") from None
        try:
            if path.suffix.lower() == ".toml":
                import tomllib

                data = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path}: invalid ranking configuration: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path}: ranking configuration must be an object")
        data.setdefault("name", path.stem)
        try:
            return cls().with_overrides(**data)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}: {exc}") from None


def _raise_configuration_errors(cls: type) -> None:
    """Invalid values raise ConfigurationError naming the field (one line), whichever way the config is made:
    the constructor, ``dataclasses.replace``, :meth:`RankingConfig.create` or a file."""
    validated_init = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            validated_init(self, *args, **kwargs)
        except ValidationError as exc:
            raise ConfigurationError(_one_error(exc)) from None

    cls.__init__ = __init__  # type: ignore[method-assign]


def _one_error(exc: ValidationError) -> str:
    """pydantic's report as ``field: message`` (the first error; the rest counted)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    name = ".".join(str(p) for p in first.get("loc", ())) or "ranking"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{name}: {message}{more}"


_raise_configuration_errors(RankingConfig)


class Ranking(list):  # type: ignore[type-arg]
    """The ranked items (a list of :class:`RankedItem`), and ``below_floor``: how many more items the box would
    have held without the relevance floor."""

    below_floor: int = 0


def rank(
    source: Source,
    candidates: Candidates,
    config: RankingConfig,
    k: int,
    *,
    relevance: np.ndarray | None = None,
    explain: Callable[[list[int]], list[list[str]]] | None = None,
    jaccard: Callable[[int, int], float] | None = None,
) -> Ranking:
    """Best ``k`` of the (already eligible) candidates. Near-duplicates of the source and of each other never
    both appear; with ``diversity`` > 0 each pick is penalised by its similarity to those already picked.

    ``relevance``: each candidate's calibrated relevance (:mod:`recommender.relevance`). With it, candidates under
    ``config.min_relevance`` are never picked (the box is shorter instead) and feedback runs only on confident
    evidence (``feedback_min_related``). Without it, every candidate may be picked and feedback always runs.

    ``jaccard(a, b)``: exact shingle Jaccard of two candidates (``-1`` is the source). The MinHash estimate
    screens every pair; a pair whose estimate is within ``DEDUP_BAND`` of the threshold, where 64 permutations
    can err either way, is decided by the exact value when this is given."""
    out = Ranking()
    if len(candidates.positions) == 0 or k <= 0:
        return out
    dup = _Duplicates(candidates.signatures, source.signature, config.near_duplicate_threshold, jaccard)
    if relevance is not None and config.prf_weight and not _confident(relevance, dup, config):
        config = _without_feedback(config)
    scores = np.asarray(fusion(config.fusion)(candidates, source, config), dtype=np.float64)
    published = candidates.published
    if config.freshness_half_life_days and not math.isnan(source.published):
        gap_days = np.abs(published - source.published) / _DAY
        dated = ~np.isnan(gap_days)
        decay = np.power(0.5, np.where(dated, gap_days, 0.0) / config.freshness_half_life_days)
        # An undated article's age is unknown: it decays like the oldest dated candidate, so asking for fresh
        # results never lifts it above dated ones (with no dated candidate at all, nothing decays).
        decay[~dated] = decay[dated].min() if dated.any() else 1.0
        scores = scores * decay
    if config.same_section_boost and source.section:
        scores = scores + config.same_section_boost * (candidates.sections == source.section)

    order = np.argsort(-scores, kind="stable")
    floored = relevance is not None and config.min_relevance > 0
    shown = order[np.asarray(relevance)[order] >= config.min_relevance] if floored else order
    chosen = _select(shown, dup, scores, candidates.vectors, k, config.diversity)
    if floored and len(chosen) < k:
        out.below_floor = max(
            0, len(_select(order, dup, scores, candidates.vectors, k, config.diversity)) - len(chosen)
        )

    # One batched call for all picks: explanations are a large share of a request's cost otherwise.
    all_terms = explain(chosen) if explain is not None and chosen else [[] for _ in chosen]
    for i, terms in zip(chosen, all_terms):
        pos = int(candidates.positions[i])
        item = RankedItem(pos, float(scores[i]), float(candidates.semantic[i]), float(candidates.lexical[i]))
        if relevance is not None:
            item.relevance = float(relevance[i])
        item.reasons = _reasons(source, i, item, candidates, terms)
        out.append(item)
    return out


def _select(
    order: np.ndarray, dup: _Duplicates, scores: np.ndarray, vectors: np.ndarray, k: int, diversity: float
) -> list[int]:
    if diversity <= 0:
        return _distinct(order, dup, k)
    # MMR over the head of the list (the tail cannot win anyway), counted in distinct stories: a head cut
    # before removing copies could hold fewer than k stories when one story was re-published many times.
    head = _distinct(order, dup, max(k * 10, 50))
    return _mmr(head, scores, vectors, k, 1.0 - diversity)


def _confident(relevance: np.ndarray, dup: _Duplicates, config: RankingConfig) -> bool:
    """Enough candidates are likely related (copies of the source aside) for feedback to sharpen, not drift."""
    if config.feedback_min_related == 0:
        return True
    likely = (np.asarray(relevance) >= config.feedback_confidence) & (dup.of_source < config.near_duplicate_threshold)
    return int(likely.sum()) >= config.feedback_min_related


@lru_cache(maxsize=64)
def _without_feedback(config: RankingConfig) -> RankingConfig:
    return replace(config, prf_weight=0.0)


#: MinHash estimates this close to the threshold are checked exactly (64 permutations: sd ~0.057 at 0.7, so
#: 0.25 is over 4 sd; an estimate outside the band is wrong about the threshold about once in 100,000 pairs).
DEDUP_BAND = 0.25


class _Duplicates:
    """Near-duplicate tests for one ranking: the MinHash estimate, made exact near the threshold."""

    def __init__(
        self, sigs: np.ndarray, source_sig: np.ndarray, threshold: float, jaccard: Callable[[int, int], float] | None
    ) -> None:
        self.sigs = sigs
        self.threshold = threshold
        self.jaccard = jaccard
        self.of_source = (sigs == source_sig[None, :]).mean(axis=1)

    def _decide(self, estimate: float, a: int, b: int) -> bool:
        if self.jaccard is not None and abs(estimate - self.threshold) < DEDUP_BAND:
            return self.jaccard(a, b) >= self.threshold
        return estimate >= self.threshold

    def of_source_at(self, i: int) -> bool:
        return self._decide(float(self.of_source[i]), -1, i)

    def any_of(self, i: int, kept: list[int], kept_sigs: np.ndarray) -> bool:
        if not kept:
            return False
        estimates = (kept_sigs == self.sigs[i][None, :]).mean(axis=1)
        return any(self._decide(float(e), j, i) for e, j in zip(estimates, kept) if e >= self.threshold - DEDUP_BAND)


def _distinct(order: np.ndarray, dup: _Duplicates, limit: int) -> list[int]:
    """The first ``limit`` candidates in ``order`` that are not near-duplicates of the source nor of each other
    (the best copy of each story is kept)."""
    kept: list[int] = []
    kept_sigs = np.empty((min(limit, len(order)), dup.sigs.shape[1]), dtype=dup.sigs.dtype)
    for i in order:
        if len(kept) >= limit:
            break
        i = int(i)
        if dup.of_source_at(i) or dup.any_of(i, kept, kept_sigs[: len(kept)]):
            continue
        kept_sigs[len(kept)] = dup.sigs[i]
        kept.append(i)
    return kept


def _mmr(head: list[int], relevance: np.ndarray, vectors: np.ndarray, k: int, lam: float) -> list[int]:
    """Maximal marginal relevance: each pick maximises lam * relevance - (1 - lam) * max similarity to the picks."""
    if not head:
        return []
    vecs = vectors[head]
    rel = relevance[head]
    max_sim = np.zeros(len(head))
    taken = np.zeros(len(head), dtype=bool)
    chosen: list[int] = []
    while len(chosen) < min(k, len(head)):
        mmr = lam * rel - (1.0 - lam) * max_sim
        mmr[taken] = -np.inf
        j = int(np.argmax(mmr))
        taken[j] = True
        chosen.append(head[j])
        max_sim = np.maximum(max_sim, vecs @ vecs[j]) if len(chosen) > 1 else vecs @ vecs[j]
    return chosen


def _reasons(source: Source, i: int, item: RankedItem, c: Candidates, terms: list[str]) -> list[dict[str, Any]]:
    """Short, machine-readable: a page can render each as a chip ("Shares: ceasefire, Geneva")."""
    reasons: list[dict[str, Any]] = []
    if terms:
        reasons.append({"type": "shared_terms", "terms": terms})
    shared_tags = sorted(source.tags & c.tags[i])
    if shared_tags:
        reasons.append({"type": "shared_tags", "tags": shared_tags[:5]})
    section = c.sections[i]
    if source.section and section == source.section:
        reasons.append({"type": "same_section", "section": section})
    reasons.append({"type": "similar_meaning", "score": round(float(item.semantic), 3)})
    published = c.published[i]
    if not math.isnan(source.published) and not math.isnan(published):
        reasons.append({"type": "published_gap", "days": round(float(published - source.published) / _DAY, 1)})
    return reasons
