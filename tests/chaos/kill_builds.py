"""kill -9 the nightly build at random points, many times, and check after each kill that the index still serves.

    python -m tests.chaos.kill_builds                 # 30 runs on a 60-article slice of the demo corpus
    python -m tests.chaos.kill_builds --runs 100 --articles 140 --seed 7

Each run changes a few articles of the export (so the build has something to embed), logs one live change in the
write-ahead log as the service would for a PUT (an acknowledged write; the export carries it from the next run on,
as a CMS export would), starts ``recommender -v build`` and sends it
SIGKILL either after a random delay or a few milliseconds into a chosen stage (embed, lexical, neighbors, write,
publish, or just after publish, before the log is compacted), so the short critical stages are hit too. A build
that finishes first counts as finished.

After every run: the published version must pass a full digest check, load and answer a related query; every
version folder must be complete; and a service starting now must serve every live change acknowledged so far.
At the end one more build must succeed (clearing the stale lock and the killed builds' leftovers) and leave the
same guarantees. Prints one line per run and a summary; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.paths import DEMO_CORPUS, subprocess_env

STAGES = ["embed", "lexical", "neighbors", "write", "publish", "after_publish"]


def _build_cmd(export: Path, index_dir: Path) -> list[str]:
    return [sys.executable, "-m", "recommender", "-v", "build", str(export), "--index-dir", str(index_dir)]


def _write_export(records: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _last_stage(log: str) -> str:
    marks = [line.split("stage ", 1)[1].strip() for line in log.splitlines() if " stage " in line]
    return marks[-1] if marks else "startup (imports, lock)"


def _wait_for(log_path: Path, marker: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if marker in log_path.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.003)
    return False


def check(index_dir: Path, live_ids: list[str], embedder: Any) -> list[str]:
    """What a service starting now would see; returns problems (empty = servable, nothing lost)."""
    from index import IndexDirectory, Manifest
    from recommender.engine import Recommender
    from recommender.serving import LiveIndex
    from recommender.settings import Settings

    problems = []
    directory = IndexDirectory(index_dir)
    try:
        path = directory.current_path()
        Manifest.read(path).verify_files(path, digests=True)
        rec = Recommender.open(index_dir, embedder=embedder)
        if not rec.related(rec.store.ids[0], 3):
            problems.append("published version answers no related articles")
    except Exception as exc:  # noqa: BLE001 - any failure to serve is the finding
        return [f"published version not servable: {exc}"]
    for info in directory.list():
        if info.error:
            problems.append(f"incomplete version folder {info.name}: {info.error}")
    live = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=embedder)
    live.load()
    if not live.ready:
        return problems + [f"service would not be ready: {live.reason}"]
    missing = [i for i in live_ids if i not in live.snapshot.recommender]
    if missing:
        problems.append(f"acknowledged live changes lost: {missing[:5]} ({len(missing)})")
    return problems


def run(runs: int, articles: int, seed: int, work: Path, echo: Any = print) -> dict[str, Any]:
    from recommender.article import parse_article
    from recommender.changelog import ChangeLog
    from recommender.embedding import Embedder

    rng = random.Random(seed)
    embedder = Embedder()
    records = [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines()[:articles]]
    export = work / "export.jsonl"
    index_dir = work / "index"
    _write_export(records, export)
    first = subprocess.run(
        _build_cmd(export, index_dir), env=subprocess_env(), capture_output=True, text=True, check=False
    )
    if first.returncode != 0:
        raise SystemExit(f"first build failed: {first.stderr[-2000:]}")
    durations: list[float] = []
    outcomes: list[dict[str, Any]] = []
    live_ids: list[str] = []
    problems: list[str] = []
    typical = 8.0  # seconds; then 1.2 x the median of the builds that finished
    for n in range(runs):
        for record in rng.sample(records, k=min(3, len(records))):  # something new to embed
            record["title"] = f"{record['title'].split(' [rev')[0]} [rev {n}]"
        _write_export(records, export)  # the live change below reaches the export of the next run
        live_id = f"live/kill-build-{n}"
        live_record = {"id": live_id, "title": f"Live change {n} about the harbour strike", "body": "Dockers."}
        ChangeLog(index_dir).append_upsert(parse_article(live_record))
        live_ids.append(live_id)
        # The export is the corpus: like a CMS, it carries a pushed article from its next export on (a live change
        # only lives in the log until a build folds it in). Until then only the log keeps it, which is what the
        # check after each kill tests.
        records.append(live_record)
        published_before = (index_dir / "CURRENT").read_text()
        log_path = work / f"build-{n}.log"
        mode = "random" if rng.random() < 1 / 3 else rng.choice(STAGES)
        started = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                _build_cmd(export, index_dir), env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT
            )
            if mode == "random":
                delay = rng.uniform(0.2, typical)
                try:
                    proc.wait(delay)
                except subprocess.TimeoutExpired:
                    pass
            else:
                marker = "stage publish done" if mode == "after_publish" else f"stage {mode} ..."
                if _wait_for(log_path, marker, proc, timeout=120):
                    time.sleep(rng.uniform(0.0, 0.02))
            killed = proc.poll() is None
            if killed:
                os.kill(proc.pid, signal.SIGKILL)
            code = proc.wait()
        elapsed = time.monotonic() - started
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if not killed:
            if code != 0:
                problems.append(f"run {n}: build failed on its own (exit {code}): {text.strip().splitlines()[-1:]}")
            else:
                durations.append(elapsed)
                typical = 1.2 * sorted(durations)[len(durations) // 2]
        stage = "finished" if not killed else _last_stage(text)
        found = check(index_dir, live_ids, embedder)
        problems += [f"run {n} ({mode}, killed in {stage}): {p}" for p in found]
        published = (index_dir / "CURRENT").read_text() != published_before
        outcomes.append(
            {
                "run": n,
                "mode": mode,
                "published": published,
                "killed": killed,
                "stage": stage,
                "seconds": round(elapsed, 2),
                "servable": not found,
            }
        )
        echo(
            f"run {n + 1}/{runs}: {'killed' if killed else 'finished'} after {elapsed:.2f}s "
            f"({mode}; last stage: {stage}); {'servable, no live change lost' if not found else 'FAILED: ' + '; '.join(found)}"
        )
    staging = index_dir / ".staging"
    leftovers = len(list(staging.iterdir())) if staging.is_dir() else 0
    # The CMS's next export carries the last run's pushed article too: without it, a last run that folded and
    # compacted its live change would see that change removed by the final build, as the export model intends.
    _write_export(records, export)
    t0 = time.monotonic()
    final = subprocess.run(
        _build_cmd(export, index_dir), env=subprocess_env(), capture_output=True, text=True, check=False
    )
    recovery = time.monotonic() - t0
    if final.returncode != 0:
        problems.append(f"the build after the kills failed: {final.stderr.strip().splitlines()[-1:]}")
    if staging.is_dir() and any(staging.iterdir()):
        problems.append("leftovers of killed builds still in .staging after a clean build")
    problems += [f"after the final build: {p}" for p in check(index_dir, live_ids, embedder)]
    stages: dict[str, int] = {}
    for o in outcomes:
        if o["killed"]:
            stages[o["stage"]] = stages.get(o["stage"], 0) + 1
    return {
        "runs": runs,
        "seed": seed,
        "killed": sum(o["killed"] for o in outcomes),
        "finished": sum(not o["killed"] for o in outcomes),
        "published": sum(o["published"] for o in outcomes),  # finished, or killed after publish (before the cleanup)
        "servable_after_each": sum(o["servable"] for o in outcomes),
        "killed_in_stage": dict(sorted(stages.items())),
        "live_changes_acknowledged": len(live_ids),
        "leftovers_before_final_build": leftovers,
        "final_build_seconds": round(recovery, 1),
        "final_build_ok": final.returncode == 0,
        "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="builds to start (most are killed) [30]")
    parser.add_argument("--articles", type=int, default=60, help="articles of the demo corpus in the export [60]")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    t0 = time.monotonic()
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
        summary = run(args.runs, args.articles, seed, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="kill-builds-") as tmp:
            summary = run(args.runs, args.articles, seed, Path(tmp))
    summary["seconds"] = round(time.monotonic() - t0, 1)
    problems = summary.pop("problems")
    print(json.dumps(summary, indent=2))
    for p in problems[:20]:
        print("PROBLEM:", p)
    ok = not problems and summary["servable_after_each"] == summary["runs"] and summary["final_build_ok"]
    print(
        f"{'PASS' if ok else 'FAIL'}: {summary['runs']} builds, {summary['killed']} killed, {summary['finished']} finished, "
        f"servable after {summary['servable_after_each']}/{summary['runs']}, {len(problems)} problems"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
