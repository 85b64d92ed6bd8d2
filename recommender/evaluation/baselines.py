"""Reference systems the real engine is measured against, behind one tiny protocol.

A number like "nDCG@10 = 0.9" means little alone: the baselines say how much of it plain recency, plain section
membership or plain word overlap already gets. Anything that answers ``recommend(query_id, k)`` can be
evaluated; :class:`FunctionSystem` wraps any callable (the production engine included).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..article import Article
from ..errors import ArticleNotFoundError, ConfigurationError

__all__ = [
    "System",
    "FunctionSystem",
    "RandomSystem",
    "MostRecentSystem",
    "RecentSameSectionSystem",
    "TfidfSystem",
    "EmbeddingSystem",
    "article_text",
]

logger = logging.getLogger(__name__)

_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


@runtime_checkable
class System(Protocol):
    """Something that recommends: ordered ids, best first, at most ``k``, never ``query_id`` itself."""

    name: str

    def recommend(self, query_id: str, k: int) -> list[str]: ...


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return int(k)


class FunctionSystem:
    """Any ``fn(query_id, k) -> iterable of ids`` as a :class:`System`; output is passed through unchanged.

    Deliberately no cleaning (self-recommendations, duplicates, over-long lists): the evaluation must see what the
    wrapped engine really returns, and counts those faults itself.
    """

    def __init__(self, name: str, fn: Callable[[str, int], Iterable[str]]) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        if not callable(fn):
            raise TypeError("fn must be callable as fn(query_id, k)")
        self.name = name
        self._fn = fn

    def recommend(self, query_id: str, k: int) -> list[str]:
        result = self._fn(query_id, _check_k(k))
        if result is None or isinstance(result, (str, bytes)):  # list("abc") would silently become 3 ids
            raise TypeError(
                f"system {self.name!r} returned {type(result).__name__} for query {query_id!r}, "
                "expected an iterable of ids"
            )
        return list(result)

    def __repr__(self) -> str:
        return f"FunctionSystem(name={self.name!r}, fn={self._fn!r})"


class _CorpusSystem:
    """Shared id <-> row bookkeeping for the built-in systems."""

    def __init__(self, articles: Sequence[Article], name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        self.name = name
        self._ids: list[str] = [article.id for article in articles]
        self._row: dict[str, int] = {}
        for row, article_id in enumerate(self._ids):
            if article_id in self._row:
                raise ConfigurationError(f"duplicate article id {article_id!r} in the corpus")
            self._row[article_id] = row
        if not self._ids:
            raise ConfigurationError("cannot build a system on an empty corpus")

    def _row_of(self, query_id: str) -> int:
        row = self._row.get(query_id)
        if row is None:
            raise ArticleNotFoundError(query_id)
        return row

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, articles={len(self._ids)})"


def _take(order: Iterable[int], ids: Sequence[str], skip: int, k: int, seen: set[int] | None = None) -> list[str]:
    out: list[str] = []
    taken = seen if seen is not None else set()
    for row in order:
        if len(out) >= k:
            break
        row = int(row)
        if row == skip or row in taken:
            continue
        taken.add(row)
        out.append(ids[row])
    return out


class RandomSystem(_CorpusSystem):
    """Uniformly random articles: the floor every other system must clear.

    The generator is seeded from ``(seed, query_id)``, so a query's list does not depend on evaluation order.
    """

    def __init__(self, articles: Sequence[Article], seed: int = 0, *, name: str = "random") -> None:
        super().__init__(articles, name)
        self.seed = int(seed)

    def recommend(self, query_id: str, k: int) -> list[str]:
        k = _check_k(k)
        row = self._row_of(query_id)
        n = len(self._ids)
        size = min(k + 1, n)
        if size == 0:
            return []
        digest = int.from_bytes(
            hashlib.blake2b(query_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"
        )
        rng = np.random.default_rng([self.seed, digest])
        picks = rng.choice(n, size=size, replace=False)
        return _take(picks, self._ids, row, k)


def _recency_order(articles: Sequence[Article]) -> list[int]:
    """Newest first, undated last, ties by id: a total order so results are reproducible."""
    return sorted(
        range(len(articles)),
        key=lambda i: (
            articles[i].published_at is None,
            -(articles[i].published_at or _EPOCH).timestamp(),
            articles[i].id,
        ),
    )


class MostRecentSystem(_CorpusSystem):
    """The newest articles overall (what a "latest news" box shows), whatever the source is about."""

    def __init__(self, articles: Sequence[Article], *, name: str = "most_recent") -> None:
        super().__init__(articles, name)
        self._order = _recency_order(articles)

    def recommend(self, query_id: str, k: int) -> list[str]:
        k = _check_k(k)
        return _take(self._order, self._ids, self._row_of(query_id), k)


class RecentSameSectionSystem(_CorpusSystem):
    """The newest articles of the source's section, topped up with the newest overall to fill ``k``."""

    def __init__(self, articles: Sequence[Article], *, name: str = "recent_same_section") -> None:
        super().__init__(articles, name)
        self._order = _recency_order(articles)
        self._section = [article.section for article in articles]
        self._by_section: dict[str, list[int]] = {}
        for row in self._order:
            section = self._section[row]
            if section:
                self._by_section.setdefault(section, []).append(row)

    def recommend(self, query_id: str, k: int) -> list[str]:
        k = _check_k(k)
        row = self._row_of(query_id)
        seen: set[int] = set()
        section = self._section[row]
        out = _take(self._by_section.get(section, []) if section else [], self._ids, row, k, seen)
        if len(out) < k:
            out += _take(self._order, self._ids, row, k - len(out), seen)
        return out


def article_text(article: Article) -> str:
    """The text lexical baselines see: title, summary and body, as an editor reads them."""
    return "\n".join(part for part in (article.title, article.summary, article.body) if part)


class TfidfSystem(_CorpusSystem):
    """More-Like-This: TF-IDF of title + summary + body, cosine similarity, only items sharing a term.

    Parameters follow Lucene MLT practice (sublinear tf, English stop words, terms in >= 2 and <= 50% of
    documents); ``vectorizer_params`` overrides them. Items with zero similarity are not returned, so a list can be
    shorter than ``k`` rather than padded with arbitrary articles.
    """

    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {
        "sublinear_tf": True,
        "stop_words": "english",
        "min_df": 2,
        "max_df": 0.5,
    }

    def __init__(
        self, articles: Sequence[Article], *, name: str = "tfidf", vectorizer_params: dict | None = None
    ) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        super().__init__(articles, name)
        params = {**self.DEFAULT_PARAMS, **(vectorizer_params or {})}
        self.vectorizer = TfidfVectorizer(**params)
        try:
            self._matrix = self.vectorizer.fit_transform([article_text(a) for a in articles]).tocsr()
        except ValueError as exc:  # empty vocabulary, or min_df/max_df contradict on a tiny corpus
            raise ConfigurationError(
                f"TF-IDF cannot be fitted on this corpus ({len(articles)} articles): {exc}"
            ) from None
        self._transposed = self._matrix.T.tocsr()

    def scores(self, query_id: str) -> np.ndarray:
        """Cosine similarity of the query to every article (rows are L2-normalised by the vectorizer)."""
        row = self._row_of(query_id)
        return np.asarray((self._matrix[row] @ self._transposed).todense()).ravel()

    def recommend(self, query_id: str, k: int) -> list[str]:
        return [i for i, _ in self.recommend_scored(query_id, k)]

    def recommend_scored(self, query_id: str, k: int) -> list[tuple[str, float]]:
        """The top ``k`` with their cosine (what a floor on this baseline compares)."""
        k = _check_k(k)
        row = self._row_of(query_id)
        scores = self.scores(query_id)
        scores[row] = 0.0
        candidates = np.flatnonzero(scores > 0)
        if candidates.size == 0 or k == 0:
            return []
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(self._ids[i], float(scores[i])) for i in order[:k]]


class EmbeddingSystem(_CorpusSystem):
    """Nearest neighbours by raw cosine of precomputed vectors (one row per article, same order).

    Exact search with numpy: deterministic (ties by corpus order) and fast enough for evaluation corpora; rows are
    re-normalised defensively so unnormalised input still gives cosine.
    """

    def __init__(self, articles: Sequence[Article], vectors: np.ndarray, *, name: str = "embedding") -> None:
        super().__init__(articles, name)
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(articles):
            raise ConfigurationError(
                f"vectors must have shape (len(articles)={len(articles)}, dim), got {tuple(matrix.shape)}"
            )
        if not np.all(np.isfinite(matrix)):
            raise ConfigurationError("vectors contain NaN or infinite values")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self._vectors = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)

    def recommend(self, query_id: str, k: int) -> list[str]:
        return [i for i, _ in self.recommend_scored(query_id, k)]

    def recommend_scored(self, query_id: str, k: int) -> list[tuple[str, float]]:
        """The top ``k`` with their cosine (what a floor on this baseline compares)."""
        k = _check_k(k)
        row = self._row_of(query_id)
        if k == 0:
            return []
        scores = self._vectors @ self._vectors[row]
        scores[row] = -np.inf
        order = np.argsort(-scores, kind="stable")
        return [(self._ids[i], float(scores[i])) for i in order[:k] if i != row]
