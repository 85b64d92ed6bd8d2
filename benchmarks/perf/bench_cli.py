"""How long the CLI takes for the commands a newcomer types first (issue 17): median of 5 runs each.

    python -m benchmarks.perf.bench_cli                # builds the demo index in a temporary folder first
    python -m benchmarks.perf.bench_cli --index-dir ~/.cache/related-articles/demo-index --runs 9

Targets on 2 cores: ``recommender --help`` under 0.5 s, ``recommender index list`` under 0.5 s and
``recommender related ID`` under 1.5 s on the demo index. The reference, measured in the same run, is the bare
interpreter (``python -c pass``): ratios against it stay comparable across machines and loads.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine_line
from tests.support.paths import DEMO_CORPUS, subprocess_env

TARGETS = {"--help": 0.5, "index list": 0.5, "related demo-006": 1.5}


def _time(command: list[str], runs: int) -> float:
    env = subprocess_env()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    recommender = shutil.which("recommender") or sys.executable + " -m recommender"
    base = recommender.split()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        index = args.index_dir
        if index is None:
            index = Path(tmp) / "demo"
            subprocess.run(
                [*base, "build", str(DEMO_CORPUS), "--index-dir", str(index)],
                env=subprocess_env(),
                check=True,
                capture_output=True,
            )
        reference = _time([sys.executable, "-c", "pass"], args.runs)
        print(f"{'python -c pass (reference)':34} {reference:6.3f} s")
        failed = False
        for label, extra in (
            ("--help", ["--help"]),
            ("index list", ["index", "list"]),
            ("related demo-006", ["related", "demo-006"]),
        ):
            command = [*base, *extra] + (["--index-dir", str(index)] if label != "--help" else [])
            seconds = _time(command, args.runs)
            target = TARGETS[label]
            verdict = "ok" if seconds < target else "OVER"
            failed |= seconds >= target
            print(
                f"{'recommender ' + label:34} {seconds:6.3f} s  ({seconds / reference:5.1f}x the reference; target < {target} s: {verdict})"
            )
    print(machine_line())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
