"""The box a reader sees, from the engine's ranked list: what editors decided (blocks, expiry, pins) applied to it.

Ranking (:mod:`.ranking`) orders candidates by relevance. This module owns the rules that are not about relevance:
an article that is blocked, in a blocked section, blocked with this source, or past its ``expires_at`` is never
shown; pinned articles come first, in the editors' order, when they exist and pass the request's filters. Blocks
win over pins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .article import Article, format_datetime
from .urls import served_url

if TYPE_CHECKING:
    from .candidates import Candidates
    from .catalog import Catalog
    from .editorial import Editorial

__all__ = [
    "PINNED",
    "Box",
    "Related",
    "Unrecommendable",
    "fallback_positions",
    "filled",
    "pinned_first",
    "pinned_positions",
]

PINNED = {"type": "pinned"}


@dataclass
class Related:
    """One item of a box. ``relevance``: calibrated probability that it is related (None where no relevance model
    scores it); ``fallback``: a fill item (not related, "more news"), shown because the box was short."""

    article: Article
    score: float
    reasons: list[dict[str, Any]] = field(default_factory=list)
    relevance: float | None = None
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        a = self.article
        return {
            "id": a.id,
            "title": a.title,
            "url": served_url(a.url),
            "published_at": format_datetime(a.published_at),
            "section": a.section,
            "image_url": served_url(a.image_url),
            "image_alt": a.image_alt or None,
            "score": round(self.score, 6),
            "relevance": None if self.relevance is None else round(self.relevance, 4),
            "fallback": self.fallback,
            "reasons": self.reasons,
        }


class Box(list):  # type: ignore[type-arg]
    """The items a reader sees (a list of :class:`Related`) and why there are not more: ``below_floor`` ranked
    items were left out because their relevance was under the floor."""

    below_floor: int = 0

    def __init__(self, items: list[Related] = (), below_floor: int = 0) -> None:  # type: ignore[assignment]
        super().__init__(items)
        self.below_floor = below_floor


def fallback_positions(
    catalog: Catalog, policy: str, section: str | None, eligible: np.ndarray, taken: set[int], n: int
) -> list[int]:
    """``n`` fill items for a short box, newest first: ``recent`` from anywhere, ``section_recent`` from the
    source's section (nothing when it has none). Only eligible positions (alive, filters, blocks, expiry), never
    one already shown or the source."""
    if n <= 0 or policy == "none":
        return []
    mask = eligible.copy()
    if policy == "section_recent":
        if not section:
            return []
        mask &= catalog.sections[: len(mask)] == section
    published = catalog.published[: len(mask)]
    candidates = np.flatnonzero(mask & ~np.isnan(published))
    order = candidates[np.argsort(-published[candidates], kind="stable")]
    return [int(p) for p in order if int(p) not in taken][:n]


class Unrecommendable:
    """Positions never to recommend under one editorial state: blocked ids and sections, and expired articles.

    Kept for one catalog size and editorial state; the expiry part is recomputed at most once a second (an
    ``expires_at`` is honoured to the second, and a request does not pay for a full column scan)."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._static: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._at = -1.0

    def mask(self, catalog: Catalog, editorial: Editorial, now: float | None = None) -> np.ndarray | None:
        """A boolean mask over the catalog's positions (True = never recommend), or None when nothing is."""
        now = time.time() if now is None else now
        key = (id(editorial), catalog.size, id(catalog.articles))
        if key != self._key:
            self._key = key
            self._static = _blocked(catalog, editorial)
            self._at = -1.0
        if int(now) != self._at:
            self._at = int(now)
            expires = catalog.articles.columns.expires[: catalog.size]
            with np.errstate(invalid="ignore"):
                expired = expires <= now
            mask = self._static | expired if self._static is not None else expired
            self._mask = mask if mask.any() else None
        return self._mask


def _blocked(catalog: Catalog, editorial: Editorial) -> np.ndarray | None:
    n = catalog.size
    mask = np.zeros(n, dtype=bool)
    if editorial.blocked_sections:
        mask |= np.isin(catalog.sections[:n], list(editorial.blocked_sections))
    for article_id in editorial.blocked_ids:
        pos = catalog.position(article_id)
        if pos is not None and pos < n:
            mask[pos] = True
    return mask if mask.any() else None


def pinned_positions(
    catalog: Catalog, editorial: Editorial, source_id: str | None, eligible: np.ndarray, blocked: np.ndarray | None
) -> list[int]:
    """Positions of the source's pinned articles that may be shown, in the editors' order: existing, alive,
    passing the request's filters (``eligible``), not blocked (blocks win over pins) and not the source."""
    if source_id is None:
        return []
    with_source = editorial.blocked_with(source_id)
    out = []
    for article_id in editorial.pins_for(source_id):
        pos = catalog.position(article_id)
        if pos is None or article_id == source_id or article_id in with_source or not eligible[pos]:
            continue
        if blocked is not None and blocked[pos]:
            continue
        out.append(pos)
    return out


def pinned_first(
    catalog: Catalog,
    pinned: Candidates,
    relevance: np.ndarray | None,
    semantic_weight: float,
    ranked: list[Related],
    k: int,
) -> list[Related]:
    """Pinned articles first (scored like any candidate, reason ``pinned``), then the ranked ones, k in all."""
    scores = semantic_weight * pinned.semantic + (1.0 - semantic_weight) * pinned.lexical
    items = [
        Related(catalog.articles[int(p)], float(sc), [dict(PINNED)], None if relevance is None else float(relevance[i]))
        for i, (p, sc) in enumerate(zip(pinned.positions, scores))
    ]
    ids = {r.article.id for r in items}
    return (items + [r for r in ranked if r.article.id not in ids])[:k]


def filled(
    catalog: Catalog, kept: list[Related], policy: str, section: str | None, eligible: np.ndarray, k: int, below: int
) -> Box:
    """A box the floor left short, filled by ``policy`` with items marked ``fallback`` (never related: "more
    news"), from ``eligible`` positions only (filters, exclusions and blocks already applied)."""
    taken = {catalog.position(r.article.id) for r in kept}
    reason = {"type": "fallback", "policy": policy}
    for pos in fallback_positions(catalog, policy, section, eligible, taken, k - len(kept)):
        kept.append(Related(catalog.articles[pos], 0.0, [dict(reason)], None, fallback=True))
    return Box(kept, below)
