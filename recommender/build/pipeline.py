"""The nightly build: export in, a validated version published atomically, the previous one untouched.

Runs the stages of :mod:`recommender.build.stages` under the index directory's build lock: everything up to
validation in memory, then the files in a staging folder, the optional quality gate, and an atomic publish.
On any failure nothing is published and the served version stays.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from index import IndexDirectory, atomic_write_json

from ..changelog import ChangeLog
from ..errors import DiskFullError, RecommenderError, ValidationFailedError
from ..settings import Settings
from . import stages
from .report import BuildReport
from .stages import BuildState, Gate

if TYPE_CHECKING:
    from ..embedding import Embedder

__all__ = ["build_index"]

logger = logging.getLogger(__name__)


def build_index(
    sources: Sequence[Path | str],
    settings: Settings,
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    progress: bool = True,
    gate: Gate | None = None,
) -> BuildReport:
    """Build and publish a new version. On any failure nothing is published and the served version stays."""
    report = BuildReport(index_dir=str(settings.index_dir))
    try:
        return _build(sources, settings, report, full=full, embedder=embedder, progress=progress, gate=gate)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            where = exc.filename or settings.index_dir
            raise DiskFullError(
                f"no space left on device while writing {where}; nothing was published and the current version is "
                "unchanged"
            ) from None
        raise
    except RecommenderError as exc:
        # The operator reads why a night failed in the same place as a good night's report.
        if report.version and not report.published:
            report.error = str(exc)
            if isinstance(exc, ValidationFailedError) and exc.details:
                report.gate = exc.details
            try:
                failed = Path(settings.index_dir) / "reports" / f"{report.version}.failed.json"
                atomic_write_json(failed, report.to_dict())
            except OSError:
                logger.warning("could not write the failure report")
        raise


def _build(
    sources: Sequence[Path | str],
    settings: Settings,
    report: BuildReport,
    *,
    full: bool,
    embedder: Embedder | None,
    progress: bool,
    gate: Gate | None,
) -> BuildReport:
    directory = IndexDirectory(settings.index_dir)
    with directory.lock():
        leftovers = directory.clean_staging()
        if leftovers:
            logger.warning("removed %d unfinished build(s) left by a crash", leftovers)
        report.version = directory.new_version_name()
        state = BuildState(
            settings, directory, report, report.version, sources, full=full, progress=progress, embedder=embedder
        )
        for name, stage in stages.PREPARE:
            with report.stage(name):
                stage(state)
        with directory.stage(report.version) as (name, staged):
            with report.stage("write"):
                stages.write(state, name, staged)
            if gate is not None:
                with report.stage("gate"):
                    report.gate = gate(staged, state.previous)
            with report.stage("publish"):
                directory.promote(name, staged)
                directory.set_current(name)
                report.published = True
            assert state.checkpoint is not None
            state.checkpoint.clear()
        if state.live_changes:
            ChangeLog(directory.root).compact(state.wal_seq)
        report.removed_versions = directory.gc(settings.keep_versions)
        atomic_write_json(directory.root / "reports" / f"{name}.json", report.to_dict())
    return report
