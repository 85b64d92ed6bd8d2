"""What every benchmark shares: the machine line printed beside each figure, and paths to the shared data.

Machines differ between sessions (Intel with AMX one day, AMD EPYC another) and are noisy, so every script prints
the CPU model, core count and load with its numbers, and reports ratios against a reference measured in the same run.
Run a benchmark from the repository root as a module: ``python -m benchmarks.perf.bench_build``.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["REPO", "SHARED_DATASETS", "cpu_model", "machine_line"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), or what the platform reports elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_line() -> str:
    """One line for the top of a benchmark's output: CPU, cores, bf16 support, load average."""
    flags = _flags()
    bf16 = "AMX" if "amx_bf16" in flags else "AVX-512 bf16" if "avx512_bf16" in flags else "no bf16 units"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"machine: {cpu_model()}; {os.cpu_count()} cores; {bf16}; load average {load}"
