"""What ranking reads: the source article and its eligible candidates as arrays, and the request's hard filters.

Gathered by the catalog (base index or live rows), consumed by fusion and ranking; no I/O, no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["Candidates", "Filters", "RankedItem", "Source"]


@dataclass(frozen=True)
class Filters:
    """Hard constraints from the request; they never make the list shorter than k while k eligible items exist."""

    sections: tuple[str, ...] = ()
    exclude_sections: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    language: str | None = None
    exclude_ids: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    @property
    def active(self) -> bool:
        return bool(self.sections or self.exclude_sections or self.tags or self.language or self.since or self.until)


@dataclass
class Source:
    """The article the box is for (indexed, live, or a draft: then ``position`` is None)."""

    vector: np.ndarray
    signature: np.ndarray
    published: float  # epoch seconds or NaN
    section: str | None
    tags: frozenset[str]
    position: int | None = None


@dataclass
class Candidates:
    """Eligible candidates with everything ranking reads."""

    positions: np.ndarray  # (m,) int64
    semantic: np.ndarray  # (m,) embedding cosine to the source
    lexical: np.ndarray  # (m,) TF-IDF cosine to the source
    vectors: np.ndarray  # (m, d) float32, L2-normalised
    signatures: np.ndarray  # (m, p) uint32 MinHash
    published: np.ndarray  # (m,) epoch seconds, NaN when unknown
    sections: np.ndarray  # (m,) object, lower-cased or None
    tags: Sequence[frozenset[str]]
    lexical_rows: sp.csr_matrix | None = None  # (m, V) L2-normalised TF-IDF rows, for feedback


@dataclass
class RankedItem:
    position: int
    score: float
    semantic: float
    lexical: float
    reasons: list[dict[str, Any]] = field(default_factory=list)
    relevance: float | None = None  # calibrated (recommender.relevance); None when no model scored it
