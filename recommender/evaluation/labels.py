"""Ground truth from a label on the articles themselves (``story_id``, ``topics``): same label, related."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..article import Article
from .groundtruth import GroundTruthError, Qrels

__all__ = ["GRADINGS", "labelled_ids", "qrels_from_labels"]

logger = logging.getLogger(__name__)

GRADINGS = ("exact", "any", "jaccard")

_ARTICLE_FIELDS = frozenset(Article.__dataclass_fields__) - {"extra"}


def _label_of(article: Article, field_name: str) -> Any:
    if field_name in _ARTICLE_FIELDS:
        return getattr(article, field_name)
    return article.extra.get(field_name)


def _normalise_label(article_id: str, field_name: str, value: Any) -> tuple[frozenset[Any] | None, bool]:
    """Label -> (set of values or None when unlabelled, whether it was a list). Scalars become singletons."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, False
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # numpy / arrow values from Parquet exports
    if isinstance(value, (list, tuple, set, frozenset)):
        items = []
        for item in value:
            if isinstance(item, str):
                item = item.strip()
                if not item:
                    continue
            elif item is None:
                continue
            elif not isinstance(item, (int, float, bool)):
                raise GroundTruthError(
                    f"article {article_id!r}: field {field_name!r} holds an unsupported {type(item).__name__}"
                )
            items.append(item)
        return (frozenset(items) or None), True
    if isinstance(value, str):
        value = value.strip()
        return (frozenset([value]) if value else None), False
    if isinstance(value, (int, float, bool)):
        return frozenset([value]), False
    raise GroundTruthError(f"article {article_id!r}: field {field_name!r} holds an unsupported {type(value).__name__}")


def labelled_ids(articles: Iterable[Article], field: str) -> set[str]:
    """Ids of the articles with a non-empty ``field`` label: the only ones whose relation to others is known."""
    return {a.id for a in articles if _normalise_label(a.id, field, _label_of(a, field))[0] is not None}


def qrels_from_labels(
    articles: Sequence[Article],
    field: str,
    grading: str = "exact",
    *,
    queries: Collection[str] | None = None,
) -> Qrels:
    """Relatedness from a label field: ``story_id``/``thread_id`` (scalar) or ``topics``/``tags`` (list).

    ``field`` names an :class:`Article` attribute (``section``, ``tags``...) or a key of ``article.extra``.
    A scalar behaves as a one-element set, so every grading gives grade 1 for the same value. For list labels:

    * ``"exact"``: identical sets -> 1 (strict: "the same kind of story"),
    * ``"any"``: at least one shared value -> 1 (loose: big labels make this easy),
    * ``"jaccard"``: grade = |A & B| / |A | B| as a float in (0, 1] (graded, the recommended default for topics).

    Queries are the labelled articles (optionally restricted to ``queries``, e.g. a seeded sample, to keep the
    qrels of a 20k corpus with huge topics in memory); an article is never relevant to itself. Scalar and exact
    gradings group by label value; overlap gradings multiply the sparse article x label matrix by its transpose,
    which is the inverted-index walk (each label's posting list) done in C rather than over all pairs.
    """
    if grading not in GRADINGS:
        raise ValueError(f"unknown grading {grading!r}; allowed: {', '.join(GRADINGS)}")
    if not isinstance(field, str) or not field:
        raise ValueError("field must be a non-empty string naming an article attribute or extra key")
    wanted = None if queries is None else set(queries)

    ids: list[str] = []
    labels: list[frozenset[Any]] = []
    any_list = False
    seen: set[str] = set()
    for article in articles:
        if article.id in seen:
            raise GroundTruthError(f"duplicate article id {article.id!r}")
        seen.add(article.id)
        label, is_list = _normalise_label(article.id, field, _label_of(article, field))
        any_list = any_list or is_list
        if label is not None:
            ids.append(article.id)
            labels.append(label)
    if not ids:
        logger.warning("no article has a non-empty %r label: the qrels are empty", field)
        return {}
    if wanted is not None:
        missing = wanted - seen
        if missing:
            logger.warning("%d requested query ids are not in the articles, e.g. %r", len(missing), sorted(missing)[:3])

    qrels: Qrels = {}
    if grading == "exact" or not any_list:
        groups: dict[frozenset[Any], list[str]] = defaultdict(list)
        for article_id, label in zip(ids, labels):
            groups[label].append(article_id)
        for members in groups.values():
            if len(members) < 2:
                continue
            for query_id in members:
                if wanted is not None and query_id not in wanted:
                    continue
                qrels[query_id] = {doc_id: 1 for doc_id in members if doc_id != query_id}
    else:
        qrels = _overlap_qrels(ids, labels, grading, wanted)
    logger.info(
        "qrels from %r (%s): %d queries, %d relevant pairs", field, grading, len(qrels), sum(map(len, qrels.values()))
    )
    return qrels


def _overlap_qrels(ids: list[str], labels: list[frozenset[Any]], grading: str, wanted: set[str] | None) -> Qrels:
    vocabulary: dict[Any, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, label in enumerate(labels):
        for value in label:
            rows.append(row)
            cols.append(vocabulary.setdefault(value, len(vocabulary)))
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(ids), len(vocabulary)))
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    query_rows = (
        np.arange(len(ids))
        if wanted is None
        else np.array([row for row, article_id in enumerate(ids) if article_id in wanted], dtype=np.int64)
    )
    qrels: Qrels = {}
    transposed = matrix.T.tocsr()
    chunk = 512  # bounds the intermediate product for labels shared by thousands of articles
    jaccard_cache: dict[tuple[int, int], float] = {}  # share float objects: millions of pairs, few values
    for start in range(0, len(query_rows), chunk):
        block_rows = query_rows[start : start + chunk]
        overlap = (matrix[block_rows] @ transposed).tocsr()
        overlap.sort_indices()
        for offset, row in enumerate(block_rows):
            lo, hi = overlap.indptr[offset], overlap.indptr[offset + 1]
            docs = overlap.indices[lo:hi]
            inter = overlap.data[lo:hi]
            grades: dict[str, int | float] = {}
            if grading == "any":
                for doc in docs:
                    if doc != row:
                        grades[ids[doc]] = 1
            else:
                size = int(sizes[row])
                for doc, common in zip(docs.tolist(), inter.tolist()):
                    if doc == row:
                        continue
                    union = size + int(sizes[doc]) - common
                    key = (common, union)
                    value = jaccard_cache.get(key)
                    if value is None:
                        value = jaccard_cache[key] = common / union
                    grades[ids[doc]] = value
            if grades:
                qrels[ids[row]] = grades
    return qrels
