"""Ground truth for offline evaluation, shared by its three readers: the :data:`Qrels` shape, the error type, and
checks of qrels against the corpus.

Three sources produce the same :data:`Qrels` shape so every metric and report works on all of them:

* an editor- or dataset-made judgement file (:mod:`.qrels`: our TSV, or standard TREC qrels),
* a label on the articles themselves such as ``story_id`` or ``topics`` (:mod:`.labels`),
* reading sessions, where articles read after one another count as related (:mod:`.sessions`).

Qrels only ever hold positive grades: an unlisted pair is not relevant, exactly as in TREC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LoadError, RecommenderError

__all__ = ["GroundTruthError", "Qrels", "UnknownIds", "iter_lines", "qrels_summary", "unknown_ids"]

logger = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int | float]]
"""query_id -> doc_id -> grade (> 0). Grades are ints for judged/labelled data, floats for Jaccard overlap."""


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


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
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
