"""Ground truth for offline evaluation: which articles are related to which, as TREC-style qrels.

Three sources produce the same :data:`Qrels` shape so every metric and report works on all of them:

* an editor- or dataset-made judgement file (:func:`load_qrels`),
* a label on the articles themselves such as ``story_id`` or ``topics`` (:func:`qrels_from_labels`),
* reading sessions, where articles read after one another count as related (:func:`qrels_from_sessions`).

Qrels only ever hold positive grades: an unlisted pair is not relevant, exactly as in TREC.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..article import Article
from ..errors import LoadError, RecommenderError

__all__ = [
    "Qrels",
    "GroundTruthError",
    "QRELS_HEADER",
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
]

logger = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int | float]]
"""query_id -> doc_id -> grade (> 0). Grades are ints for judged/labelled data, floats for Jaccard overlap."""

QRELS_HEADER = ("query_id", "doc_id", "grade")
GRADINGS = ("exact", "any", "jaccard")
SESSION_GRADINGS = ("count", "binary")


class GroundTruthError(RecommenderError, ValueError):
    """Ground truth input is malformed. File errors read ``"{path}:{line}: {reason}"`` like a compiler's."""

    code = "invalid_ground_truth"
    exit_code = 2

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.reason = reason if reason is not None else message

    @classmethod
    def at(cls, path: str | Path, line: int, reason: str) -> GroundTruthError:
        """An error located in a file, so the data team can jump straight to the bad line."""
        return cls(f"{path}:{line}: {reason}", path=str(path), line=line, reason=reason)


# --------------------------------------------------------------------------------------------------------------
# Judgement files
# --------------------------------------------------------------------------------------------------------------


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered, decoded lines without their line ending; decoding per line keeps the line number in errors."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise GroundTruthError.at(path, number, "not valid UTF-8") from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]  # spreadsheet exports add a BOM
            yield number, text.rstrip("\r\n")


def _parse_grade(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def load_qrels(path: str | Path) -> Qrels:
    """Read a ``query_id<TAB>doc_id<TAB>grade`` file (header line first) into :data:`Qrels`.

    Grade 0 rows are legal TREC judgements ("judged not relevant") and are dropped, because qrels here only list
    relevant pairs. Anything else that looks wrong stops the load with ``GroundTruthError("{path}:{line}: ...")``:
    a silently skipped row would quietly change every score computed from the file.
    """
    path = Path(path)
    qrels: Qrels = {}
    seen: dict[tuple[str, str], int] = {}
    zero_grades = 0
    saw_header = False
    for number, line in _iter_lines(path):
        if not saw_header:
            cells = tuple(cell.strip() for cell in line.split("\t"))
            if cells != QRELS_HEADER:
                raise GroundTruthError.at(
                    path, number, f"bad header: expected 'query_id<TAB>doc_id<TAB>grade', got {line[:80]!r}"
                )
            saw_header = True
            continue
        if not line.strip():
            continue  # blank lines (often a trailing one) carry no judgement
        cells = tuple(cell.strip() for cell in line.split("\t"))
        if len(cells) != 3:
            raise GroundTruthError.at(path, number, f"expected 3 tab-separated columns, got {len(cells)}")
        query_id, doc_id, grade_text = cells
        if not query_id:
            raise GroundTruthError.at(path, number, "empty query_id")
        if not doc_id:
            raise GroundTruthError.at(path, number, "empty doc_id")
        grade = _parse_grade(grade_text)
        if grade is None:
            raise GroundTruthError.at(path, number, f"grade is not a number: {grade_text[:40]!r}")
        if not math.isfinite(grade):
            raise GroundTruthError.at(path, number, f"grade is not finite: {grade_text[:40]!r}")
        if grade < 0:
            raise GroundTruthError.at(path, number, f"grade is negative: {grade_text[:40]!r}")
        if query_id == doc_id:
            raise GroundTruthError.at(path, number, f"doc_id equals query_id {query_id!r}")
        key = (query_id, doc_id)
        if key in seen:
            raise GroundTruthError.at(
                path, number, f"duplicate pair ({query_id!r}, {doc_id!r}), first on line {seen[key]}"
            )
        seen[key] = number
        if grade == 0:
            zero_grades += 1
            continue
        if isinstance(grade, float) and grade.is_integer():
            grade = int(grade)
        qrels.setdefault(query_id, {})[doc_id] = grade
    if not saw_header:
        raise GroundTruthError.at(path, 1, "empty file: expected header 'query_id<TAB>doc_id<TAB>grade'")
    if zero_grades:
        logger.info("%s: dropped %d grade-0 rows (qrels keep relevant pairs only)", path, zero_grades)
    logger.info("%s: %d queries, %d relevant pairs", path, len(qrels), sum(map(len, qrels.values())))
    return qrels


def save_qrels(qrels: Mapping[str, Mapping[str, int | float]], path: str | Path) -> Path:
    """Write qrels in the format :func:`load_qrels` reads (sorted, so the file diffs cleanly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("\t".join(QRELS_HEADER) + "\n")
        for query_id in sorted(qrels):
            for doc_id in sorted(qrels[query_id]):
                grade = qrels[query_id][doc_id]
                out.write(
                    f"{query_id}\t{doc_id}\t{grade!r}\n"
                    if isinstance(grade, float)
                    else f"{query_id}\t{doc_id}\t{grade}\n"
                )
    return path


# --------------------------------------------------------------------------------------------------------------
# Labels on the articles
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# Reading sessions
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionStats:
    """What a sessions file held, so dropped reads are visible in the evaluation, never silent."""

    lines: int
    sessions: int
    reads: int
    repeated_reads: int
    unknown_reads: int
    unknown_ids: tuple[str, ...]
    queries: int
    pairs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "sessions": self.sessions,
            "reads": self.reads,
            "repeated_reads": self.repeated_reads,
            "unknown_reads": self.unknown_reads,
            "unknown_ids": len(self.unknown_ids),
            "queries": self.queries,
            "pairs": self.pairs,
        }


def qrels_from_sessions(
    path: str | Path,
    corpus_ids: Iterable[str],
    *,
    grading: str = "count",
) -> tuple[Qrels, dict[str, int], SessionStats]:
    """Co-reading ground truth from ``sessions.jsonl`` (``{"session_id": ..., "article_ids": [...]}`` a line).

    An article read later in a session is related to every article read earlier in it (reading order is the
    recommendation direction: "after A the reader went on to B"). With ``grading="count"`` (the default) the grade
    is the number of sessions that made that co-read, so pairs many readers followed weigh more in nDCG;
    ``"binary"`` gives every co-read grade 1. Re-reads within a session count once (first position).

    Returns ``(qrels, popularity, stats)``; popularity is the number of sessions that read each corpus article
    (the input of the novelty metric). Ids not in ``corpus_ids`` are left out of both, counted in ``stats`` and
    logged as a warning. Malformed lines raise ``GroundTruthError("{path}:{line}: ...")``.
    """
    if grading not in SESSION_GRADINGS:
        raise ValueError(f"unknown grading {grading!r}; allowed: {', '.join(SESSION_GRADINGS)}")
    path = Path(path)
    corpus = corpus_ids if isinstance(corpus_ids, (set, frozenset)) else set(corpus_ids)
    qrels: Qrels = {}
    popularity: dict[str, int] = {}
    first_line: dict[str, int] = {}
    lines = sessions = reads = repeated = unknown_reads = 0
    unknown: set[str] = set()
    for number, line in _iter_lines(path):
        lines += 1
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GroundTruthError.at(path, number, f"invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise GroundTruthError.at(path, number, f"expected a JSON object, got {_json_type(record)}")
        session_id = record.get("session_id")
        if isinstance(session_id, int) and not isinstance(session_id, bool):
            session_id = str(session_id)
        if not isinstance(session_id, str) or not session_id.strip():
            raise GroundTruthError.at(path, number, "missing or empty session_id")
        session_id = session_id.strip()
        if session_id in first_line:
            raise GroundTruthError.at(
                path, number, f"duplicate session_id {session_id!r}, first on line {first_line[session_id]}"
            )
        first_line[session_id] = number
        article_ids = record.get("article_ids")
        if not isinstance(article_ids, list):
            raise GroundTruthError.at(path, number, f"article_ids must be a list, got {_json_type(article_ids)}")
        ordered: list[str] = []
        in_session: set[str] = set()
        for position, item in enumerate(article_ids):
            if not isinstance(item, str) or not item.strip():
                raise GroundTruthError.at(
                    path, number, f"article_ids[{position}] must be a non-empty string, got {item!r:.40}"
                )
            item = item.strip()
            reads += 1
            if item not in corpus:
                unknown_reads += 1
                unknown.add(item)
                continue
            if item in in_session:
                repeated += 1
                continue
            in_session.add(item)
            ordered.append(item)
        sessions += 1
        for position, later in enumerate(ordered):
            popularity[later] = popularity.get(later, 0) + 1
            for earlier in ordered[:position]:
                grades = qrels.setdefault(earlier, {})
                grades[later] = 1 if grading == "binary" else grades.get(later, 0) + 1
    stats = SessionStats(
        lines=lines,
        sessions=sessions,
        reads=reads,
        repeated_reads=repeated,
        unknown_reads=unknown_reads,
        unknown_ids=tuple(sorted(unknown)),
        queries=len(qrels),
        pairs=sum(map(len, qrels.values())),
    )
    if unknown_reads:
        logger.warning(
            "%s: %d reads of %d ids not in the corpus were left out, e.g. %r",
            path,
            unknown_reads,
            len(unknown),
            stats.unknown_ids[:3],
        )
    logger.info("%s: %d sessions, %d queries, %d co-read pairs", path, sessions, stats.queries, stats.pairs)
    return qrels, popularity, stats


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --------------------------------------------------------------------------------------------------------------
# Consistency with the corpus
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnknownIds:
    """Qrels ids the corpus does not hold: such queries cannot be answered and such docs cannot be recommended."""

    queries: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    pairs: int = 0

    @property
    def count(self) -> int:
        """Distinct unknown ids (a query id that is also a doc id counts once)."""
        return len(set(self.queries) | set(self.docs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "unknown_query_ids": len(self.queries),
            "unknown_doc_ids": len(self.docs),
            "pairs_with_unknown_doc": self.pairs,
            "examples": sorted(set(self.queries) | set(self.docs))[:10],
        }


def unknown_ids(qrels: Mapping[str, Mapping[str, Any]], corpus_ids: Iterable[str]) -> UnknownIds:
    """Report qrels query and doc ids that are not in the corpus (stale judgements, wrong export, id drift)."""
    corpus = corpus_ids if isinstance(corpus_ids, (set, frozenset)) else set(corpus_ids)
    queries = sorted(query_id for query_id in qrels if query_id not in corpus)
    docs: set[str] = set()
    pairs = 0
    for grades in qrels.values():
        for doc_id in grades:
            if doc_id not in corpus:
                docs.add(doc_id)
                pairs += 1
    result = UnknownIds(queries=tuple(queries), docs=tuple(sorted(docs)), pairs=pairs)
    if result.count:
        logger.warning(
            "qrels hold %d query ids and %d doc ids not in the corpus, e.g. %r",
            len(queries),
            len(docs),
            sorted(set(queries) | docs)[:3],
        )
    return result


def qrels_summary(qrels: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Flat size summary for reports and notebooks: how much ground truth there is and how graded it is."""
    sizes = [len(grades) for grades in qrels.values()]
    grades = [g for per_query in qrels.values() for g in per_query.values()]
    return {
        "queries": len(qrels),
        "pairs": sum(sizes),
        "relevant_per_query_mean": float(np.mean(sizes)) if sizes else 0.0,
        "relevant_per_query_median": float(np.median(sizes)) if sizes else 0.0,
        "distinct_grades": len(set(grades)),
    }
