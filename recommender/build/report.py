"""The build report: what a build did, counted and timed; saved in the version and under ``reports/``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BuildReport"]

logger = logging.getLogger(__name__)


@dataclass
class BuildReport:
    version: str | None = None
    published: bool = False
    index_dir: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    throughput: dict[str, float] = field(default_factory=dict)
    index_type: str = ""
    recall_at_10: float | None = None
    #: the approximate index's search breadth after tuning to the recall floor (e.g. {"efSearch": 256})
    search_params: dict[str, int] = field(default_factory=dict)
    #: share of the exact top-10 TF-IDF neighbours in the precomputed lists (measured when the corpus is above
    #: ``lexical_exact_threshold`` and common terms are capped; None = exact)
    lexical_recall_at_10: float | None = None
    rejects_file: str | None = None
    #: the backend that made the vectors, what was asked for, and (for auto) the measured choice
    embedding: dict[str, Any] = field(default_factory=dict)
    #: the editorial.json beside the export the build read (None: settings' file or the previous version's)
    editorial_file: str | None = None
    #: up to ten URL keys shared by several articles, with (up to five of) their ids
    duplicate_urls: list[dict[str, Any]] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    removed_versions: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        c = self.counts
        shown = (
            "articles", "new", "changed", "unchanged", "removed", "rejected", "duplicates", "duplicate_urls",
            "derived_titles", "resumed",
        )  # fmt: skip
        parts = [f"{k} {c[k]}" for k in shown if c.get(k) or k == "articles"]
        total = sum(self.timings.values())
        rate = self.throughput.get("articles_per_s")
        head = f"published {self.version}" if self.published else "built (not published)"
        # A rate over a handful of articles says nothing (a one-article build is not "0 articles/s").
        speed = f" ({rate:.0f} articles/s)" if rate and c.get("articles", 0) >= 100 else ""
        return f"{head}: {', '.join(parts)}; {self.index_type} index; {total:.1f}s{speed}"

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one named stage into ``timings`` (and log its start and end for ``-v`` and the kill tests)."""
        start = time.perf_counter()
        logger.info("stage %s ...", name)
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)
            logger.info("stage %s done in %.2fs", name, self.timings[name])
