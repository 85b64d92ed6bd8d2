"""The nightly build: :func:`build_index` runs the stages of :mod:`.stages` and publishes atomically (:mod:`.pipeline`)."""

from .pipeline import build_index
from .report import BuildReport
from .stages import Gate

__all__ = ["BuildReport", "Gate", "build_index"]
