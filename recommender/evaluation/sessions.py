"""Ground truth from reading logs: articles read after one another in a session count as related."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .groundtruth import GroundTruthError, Qrels, iter_lines

__all__ = ["SESSION_GRADINGS", "SessionStats", "qrels_from_sessions"]

logger = logging.getLogger(__name__)

SESSION_GRADINGS = ("count", "binary")


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
    for number, line in iter_lines(path):
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
