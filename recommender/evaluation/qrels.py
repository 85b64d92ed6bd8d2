"""Judgement files: our ``query_id<TAB>doc_id<TAB>grade`` TSV, and standard TREC qrels (read with ir-measures)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

from .groundtruth import GroundTruthError, Qrels, iter_lines

__all__ = ["QRELS_HEADER", "is_trec_qrels", "load_qrels", "load_trec_qrels", "save_qrels"]

logger = logging.getLogger(__name__)

QRELS_HEADER = ("query_id", "doc_id", "grade")


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
    """Read judgements into :data:`Qrels`: our TSV (header ``query_id<TAB>doc_id<TAB>grade`` first), or standard
    TREC qrels (``query_id iteration doc_id grade``, no header), told apart by the first line.

    Grade 0 rows are legal TREC judgements ("judged not relevant") and are dropped, because qrels here only list
    relevant pairs. Anything else that looks wrong stops the load with ``GroundTruthError("{path}:{line}: ...")``:
    a silently skipped row would quietly change every score computed from the file.
    """
    path = Path(path)
    if is_trec_qrels(path):
        return load_trec_qrels(path)
    qrels: Qrels = {}
    seen: dict[tuple[str, str], int] = {}
    zero_grades = 0
    saw_header = False
    for number, line in iter_lines(path):
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


def is_trec_qrels(path: Path) -> bool:
    """Whether the first non-blank line looks like a TREC qrels row: four whitespace-separated fields, the last
    an integer (our TSV starts with its header instead)."""
    for _, line in iter_lines(path):
        if line.strip():
            cells = line.split()
            return len(cells) == 4 and cells[3].lstrip("-").isdigit()
    return False


def load_trec_qrels(path: str | Path) -> Qrels:
    """Standard TREC qrels read with ir-measures. Grades of 0 or less (judged not relevant; some collections mark
    junk with -1) are left out, as qrels here list relevant pairs only; a doc judged twice keeps its last grade."""
    import ir_measures

    path = Path(path)
    qrels: Qrels = {}
    dropped = 0
    for number, line in iter_lines(path):  # the same line-numbered checks the TSV gets
        if line.strip() and (len(line.split()) != 4 or not line.split()[3].lstrip("-").isdigit()):
            raise GroundTruthError.at(path, number, f"not a TREC qrels line (query iteration doc grade): {line[:80]!r}")
    for row in ir_measures.read_trec_qrels(str(path)):
        if row.query_id == row.doc_id:
            raise GroundTruthError(f"{path}: doc_id equals query_id {row.query_id!r}", path=str(path))
        if row.relevance <= 0:
            dropped += 1
            continue
        qrels.setdefault(row.query_id, {})[row.doc_id] = int(row.relevance)
    if dropped:
        logger.info("%s: dropped %d rows graded 0 or less (qrels keep relevant pairs only)", path, dropped)
    logger.info("%s: TREC qrels, %d queries, %d relevant pairs", path, len(qrels), sum(map(len, qrels.values())))
    return qrels
