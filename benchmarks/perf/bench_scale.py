"""Scale: how build time, memory, disk, latency and recall grow from 10k to 100k to 1M articles.

    python -m benchmarks.perf.bench_scale                                  # 10k, 100k and 1M (hours on 2 cores)
    python -m benchmarks.perf.bench_scale --sizes 10000 100000             # minutes
    python -m benchmarks.perf.bench_scale --sizes 1000000 --compressed     # + compressed index types at 1M
    python -m benchmarks.perf.bench_scale --report-only                    # table and plot from cached results

Per size N, on a synthetic export of N articles (``synthetic_corpus.py``: real reuters21578 sentences in new
combinations, so the bundled model's vectors are real), cached with everything else under ``--cache``
(default ``~/.cache/related-articles/scale``), never in the repository:

1. ``recommender build`` as a subprocess (``--backend bf16`` by default, the fast path an operator would pick
   for a large archive, and ``RECOMMENDER_MAX_SEQ_LENGTH=64``: a headline and lead, which makes a million real
   vectors affordable on 2 cores; ``bench_build.py`` measures embedding of full 120-word leads): stage timings from its JSON report, its peak RSS (``wait4``), the index size on disk
   by file. The first build of a size is seeded with the previous size's index, so only the new articles are
   embedded; the embedding rate is measured on those and the full-build time is projected as
   ``N / rate + the other stages`` (all other stages always run over all N). ``--rebuild`` also runs the
   nightly case, a build of the same export that reuses every vector, and the service then loads its version.
2. The service (``python -m service``, one uvicorn process) on that index, once fully loaded and once
   memory-mapped (``RECOMMENDER_MMAP=true``): resident memory, its anonymous (private, per-process) part, the
   time to ready, and related-by-id latency p50/p99 over distinct random ids (every request misses the
   response cache), plus related-for-text (drafts, embedded on the request) p50/p99.
3. Recall@10 of the index type ``auto`` chose, against exact search on 2,000 sampled real vectors, beside the
   figure the build measured and wrote to the manifest.
4. ``--compressed``: the compressed index types (``hnsw_sq8``, ``ivf_sq8``) built on the same
   vectors: recall@10, bytes per vector, build time and search latency, next to the uncompressed ones.

Ratios are what to read on a noisy machine: each row also prints memory per article and latency relative to
the 10k row measured in the same run. Results go to ``CACHE/results.json``; ``--plot`` (default
``docs/scale.png``) draws the growth curves.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, machine_line
from benchmarks.perf import synthetic_corpus
from recommender.evaluation.metrics import percentiles
from tests.support.paths import subprocess_env

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "related-articles" / "scale"


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def corpus(cache: Path, n: int) -> Path:
    path = cache / f"corpus-{_label(n)}.jsonl"
    if not path.exists():
        print(f"[{_label(n)}] writing the synthetic corpus {path} ...", flush=True)
        synthetic_corpus.write(n, path)
    return path


# -- 1. build -------------------------------------------------------------------------------------------
def _run_build(
    cache: Path, label: str, export: Path, index_dir: Path, backend: str, max_seq_length: int, tag: str
) -> tuple[dict, float, float]:
    """One ``recommender build`` subprocess: (its JSON report, wall seconds, peak RSS in MB)."""
    cmd = [sys.executable, "-m", "recommender", "-v", "build", str(export), "--index-dir", str(index_dir),
           "--backend", backend, "--json"]  # fmt: skip
    env = subprocess_env(RECOMMENDER_MAX_SEQ_LENGTH=str(max_seq_length))
    print(f"[{label}] {' '.join(cmd[2:])}", flush=True)
    log_path = cache / f"{tag}-{label}.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log)
        out = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{tag} of {label} failed; see {log_path}")
    return json.loads(out), wall, usage.ru_maxrss / 1024  # Linux reports KiB


def build(
    cache: Path, n: int, smaller: int | None, backend: str, rebuild: bool, max_seq_length: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The build that embedded this size (cached), and with ``rebuild`` a nightly rebuild of the unchanged export."""
    label = _label(n)
    index_dir = cache / f"index-{label}"
    result_path = cache / f"build-{label}.json"
    export = corpus(cache, n)
    if result_path.exists() and (index_dir / "CURRENT").exists():
        result = json.loads(result_path.read_text())
    else:
        if (
            not (index_dir / "CURRENT").exists()
            and smaller
            and (cache / f"index-{_label(smaller)}" / "CURRENT").exists()
        ):
            shutil.rmtree(index_dir, ignore_errors=True)  # seed with the smaller index: reuse its vectors
            shutil.copytree(cache / f"index-{_label(smaller)}", index_dir, ignore=shutil.ignore_patterns("build.lock"))
        report, wall, peak = _run_build(cache, label, export, index_dir, backend, max_seq_length, "build")
        result = _summary(report, index_dir, n, wall, peak, backend, max_seq_length)
        result_path.write_text(json.dumps(result, indent=2))
    again = None
    if rebuild:
        report, wall, peak = _run_build(cache, label, export, index_dir, backend, max_seq_length, "rebuild")
        again = _summary(report, index_dir, n, wall, peak, backend, max_seq_length, rate=result["embed_rate"])
        (cache / f"rebuild-{label}.json").write_text(json.dumps(again, indent=2))
    elif (cache / f"rebuild-{label}.json").exists():
        again = json.loads((cache / f"rebuild-{label}.json").read_text())
    return result, again


def _summary(report: dict, index_dir: Path, n: int, wall: float, peak_mb: float, backend: str, max_seq_length: int,
             rate: float | None = None) -> dict[str, Any]:  # fmt: skip
    version_dir = index_dir / "versions" / report["version"]
    files = {p.name: p.stat().st_size for p in sorted(version_dir.iterdir()) if p.is_file()}
    timings = report["timings"]
    embedded = report["counts"].get("embedded", 0)
    measured = embedded / timings["embed"] if embedded and timings.get("embed") else None
    rate = measured or rate
    other = sum(v for k, v in timings.items() if k not in ("embed", "load_model"))
    return {
        "articles": report["counts"]["articles"],
        "embedded": embedded,
        "reused": report["counts"].get("unchanged", 0),
        "embed_rate": round(rate, 1) if rate else None,
        "backend": backend,
        "max_seq_length": max_seq_length,
        "timings": timings,
        "projected_full_build_s": round(n / rate + other + timings.get("load_model", 0), 1) if rate else None,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "index_type": report["index_type"],
        "recall_at_10_build": report.get("recall_at_10"),
        "lexical_recall_at_10_build": report.get("lexical_recall_at_10"),
        "disk_bytes": sum(files.values()),
        "disk_files": files,
        "version": report["version"],
    }


# -- 2. service ------------------------------------------------------------------------------------------
def _memory(pid: int) -> dict[str, float]:
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return {"rss_mb": round(fields.get("Rss", 0), 1), "anonymous_mb": round(fields.get("Anonymous", 0), 1),
            "file_backed_mb": round(fields.get("Rss", 0) - fields.get("Anonymous", 0), 1)}  # fmt: skip


def serve(
    index_dir: Path, ids: list[str], log_path: Path, *, mmap: bool, requests: int, drafts: list[dict]
) -> dict[str, Any]:
    import httpx
    from service_fixtures import ServerProcess, wait_until

    server = ServerProcess(index_dir, log_path, mmap=str(mmap).lower(), poll_interval=0, cache_size=0)
    server.env.pop("OMP_NUM_THREADS", None)
    started = time.monotonic()
    server.start(timeout=600)
    try:
        wait_until(lambda: httpx.get(server.url + "/readyz", timeout=5).status_code == 200, 3600, 0.5, "ready")
        ready_s = time.monotonic() - started
        rng = random.Random(7)
        picks = rng.sample(ids, min(requests, len(ids)))
        latencies: list[float] = []
        with server.client() as client:
            for warm in picks[:20]:
                client.get(f"/v1/articles/{warm}/related", params={"k": 6})
            if drafts:  # the model loads on the first draft: load it now so every memory figure includes it
                client.post("/v1/related", json={**drafts[0], "k": 6})
            for article_id in picks:
                t0 = time.perf_counter()
                r = client.get(f"/v1/articles/{article_id}/related", params={"k": 6})
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200 or len(r.json()["items"]) != 6:
                    raise SystemExit(f"related-by-id {article_id}: {r.status_code} {r.text[:300]}")
            assert server.proc is not None
            memory = _memory(server.proc.pid)  # after serving by id (the model is loaded: see the warm-up)
            draft_latencies = []
            for draft in drafts:
                t0 = time.perf_counter()
                r = client.post("/v1/related", json={**draft, "k": 6})
                draft_latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"related-for-text: {r.status_code} {r.text[:300]}")
        after_drafts = _memory(server.proc.pid)
    finally:
        server.stop()
    return {"mmap": mmap, "ready_s": round(ready_s, 1), **memory, "rss_after_drafts_mb": after_drafts["rss_mb"],
            "related_by_id_ms": percentiles(latencies), "related_for_text_ms": percentiles(draft_latencies)}  # fmt: skip


# -- 3./4. recall and compressed index types ---------------------------------------------------------------
def recall(index_dir: Path, queries: int = 2000) -> dict[str, Any]:
    import numpy as np

    from index import IndexDirectory, Manifest, VectorStore, measure_recall

    path = IndexDirectory(index_dir).current_path()
    manifest = Manifest.read(path)
    store = VectorStore.load(path, index_type=manifest.index_type, mmap=True)
    vectors = np.asarray(store.vectors, dtype=np.float32)
    value = 1.0 if store.index_type == "flat" else measure_recall(store.index, vectors, k=10, sample=queries, seed=11)
    return {"index_type": store.index_type, "recall_at_10": round(value, 4), "queries": queries}


def compressed(index_dir: Path, kinds: list[str], queries: int = 2000) -> list[dict[str, Any]]:
    import faiss
    import numpy as np

    from index import IndexDirectory, IndexSpec, Manifest, VectorStore, recall_at_k

    path = IndexDirectory(index_dir).current_path()
    published = Manifest.read(path).index_type
    vectors = np.load(path / "vectors.npy")
    rng = np.random.default_rng(11)
    sample = np.ascontiguousarray(vectors[rng.choice(len(vectors), size=queries, replace=False)])
    # The exact reference through FAISS flat search: a NumPy argsort over 2,000 x 1M scores would need 24 GB.
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    _, exact = flat.search(sample, 10)
    del flat
    rows = []
    for kind in kinds:
        t0 = time.perf_counter()
        if kind == published:  # the build made this one already: measure the published file
            store = VectorStore.load(path, index_type=kind)
            build_s = float("nan")
        else:
            store = VectorStore.build([str(i) for i in range(len(vectors))], vectors, IndexSpec(index_type=kind))
            store.tune(0.95, k=10)  # what a build does: widen the search to the default recall floor
            build_s = time.perf_counter() - t0
        faiss.omp_set_num_threads(1)  # per-query latency as one request sees it
        t0 = time.perf_counter()
        _, found = store.search_positions(sample, 10)
        per_query_ms = (time.perf_counter() - t0) * 1000 / queries
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        size = len(faiss.serialize_index(store.index))
        knob = (
            {"efSearch": int(store.index.hnsw.efSearch)}
            if hasattr(store.index, "hnsw")
            else ({"nprobe": int(store.index.nprobe)} if hasattr(store.index, "nprobe") else {})
        )
        rows.append({"index_type": kind, "search_params": knob, "recall_at_10": round(recall_at_k(found, exact, 10), 4),
                     "index_mb": round(size / 2**20, 1), "bytes_per_vector": round(size / len(vectors), 1),
                     "build_s": None if build_s != build_s else round(build_s, 1), "search_ms": round(per_query_ms, 3)})  # fmt: skip
        print(f"    {kind}: {rows[-1]}", flush=True)
        del store
    return rows


# -- report ------------------------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    sizes = sorted(results["sizes"], key=int)
    head = "| | " + " | ".join(_label(int(n)) for n in sizes) + " |"
    lines = [head, "|---" * (len(sizes) + 1) + "|"]

    def row(name: str, fn: Any) -> None:
        cells = []
        for n in sizes:
            try:
                cells.append(fn(results["sizes"][n], int(n)))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("")
        if any(c.strip() for c in cells):  # rows nobody measured (e.g. no --rebuild run) are left out
            lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row("index type (auto)", lambda r, n: r["build"]["index_type"])
    row("embedding (bf16), articles/s", lambda r, n: f"{r['build']['embed_rate']:.0f}")
    for stage in ("load", "lexical", "signatures", "index", "neighbors", "validate", "write", "publish"):
        row(f"build stage {stage}, s", lambda r, n, s=stage: f"{r['build']['timings'][s]:.1f}")
    row("full build, projected, s", lambda r, n: f"{r['build']['projected_full_build_s']:.0f}")
    row("build peak RSS, GB", lambda r, n: f"{r['build']['peak_rss_mb'] / 1024:.2f}")
    row("nightly rebuild, export unchanged (every vector reused), s", lambda r, n: f"{r['rebuild']['wall_s']:.0f}")
    row("nightly rebuild peak RSS, GB", lambda r, n: f"{r['rebuild']['peak_rss_mb'] / 1024:.2f}")
    row("index on disk, GB", lambda r, n: f"{(r.get('rebuild') or r['build'])['disk_bytes'] / 2**30:.2f}")
    row("service RSS, GB (loaded)", lambda r, n: f"{r['serve']['loaded']['rss_mb'] / 1024:.2f}")
    row(
        "service private memory per article, KB (loaded)",
        lambda r, n: f"{(r['serve']['loaded']['anonymous_mb'] - results['baseline']['anonymous_mb']) * 1024 / n:.2f}",
    )
    row("service private memory, GB (mmap)", lambda r, n: f"{r['serve']['mmap']['anonymous_mb'] / 1024:.2f}")
    row(
        "service private memory per article, KB (mmap)",
        lambda r, n: f"{(r['serve']['mmap']['anonymous_mb'] - results['baseline']['anonymous_mb']) * 1024 / n:.2f}",
    )
    row("service time to ready, s", lambda r, n: f"{r['serve']['loaded']['ready_s']:.0f}")
    row(
        "related-by-id p50 / p99, ms",
        lambda r, n: "{p50:.1f} / {p99:.1f}".format(**r["serve"]["loaded"]["related_by_id_ms"]),
    )
    row(
        "related-for-text p50 / p99, ms",
        lambda r, n: "{p50:.1f} / {p99:.1f}".format(**r["serve"]["loaded"]["related_for_text_ms"]),
    )
    row("FAISS recall@10 vs exact (2,000 queries)", lambda r, n: f"{r['recall']['recall_at_10']:.4f}")
    row(
        "TF-IDF candidate recall@10 vs exact (build, 500 queries)",
        lambda r, n: (
            "exact"
            if r["build"].get("lexical_recall_at_10_build") is None
            else f"{r['build']['lexical_recall_at_10_build']:.4f}"
        ),
    )
    return "\n".join(lines)


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results["sizes"], key=int)
    xs = [int(n) for n in sizes]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    stages = ("embed_projected", "lexical", "signatures", "index", "neighbors", "write")
    for stage in stages:
        ys = []
        for n in sizes:
            b = results["sizes"][n]["build"]
            ys.append(int(n) / b["embed_rate"] if stage == "embed_projected" else b["timings"].get(stage, 0))
        axes[0].plot(xs, ys, marker="o", label=stage.replace("_projected", " (projected)"))
    axes[0].set(xscale="log", yscale="log", xlabel="articles", ylabel="seconds", title="build time by stage")
    axes[0].legend(fontsize=7)
    for key, label in (
        ("disk", "index on disk"),
        ("build", "build peak RSS"),
        ("loaded", "service RSS"),
        ("mmap", "service private (mmap)"),
    ):
        ys = []
        for n in sizes:
            r = results["sizes"][n]
            ys.append({"disk": r["build"]["disk_bytes"] / 2**30, "build": r["build"]["peak_rss_mb"] / 1024,
                       "loaded": r["serve"]["loaded"]["rss_mb"] / 1024, "mmap": r["serve"]["mmap"]["anonymous_mb"] / 1024}[key])  # fmt: skip
        axes[1].plot(xs, ys, marker="o", label=label)
    axes[1].set(xscale="log", yscale="log", xlabel="articles", ylabel="GB", title="memory and disk")
    axes[1].legend(fontsize=7)
    for route, key, label in (("related_by_id_ms", "p50", "related-by-id p50"), ("related_by_id_ms", "p99", "related-by-id p99"),
                              ("related_for_text_ms", "p50", "related-for-text p50 (embeds the draft)")):  # fmt: skip
        axes[2].plot(xs, [results["sizes"][n]["serve"]["loaded"][route][key] for n in sizes], marker="o", label=label)
    axes[2].set(xscale="log", yscale="log", xlabel="articles", ylabel="ms", title="latency (one uvicorn process)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> int:
    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--backend", default="bf16", help="embedding backend of the builds [bf16]")
    parser.add_argument(
        "--max-seq-length",
        type=int,
        default=64,
        help="word pieces embedded per article [64: a headline and lead; 1M real vectors in ~2 h on 2 cores]",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="also run a nightly rebuild of the unchanged export (every vector reused) and serve what it publishes",
    )
    parser.add_argument("--requests", type=int, default=1000, help="related-by-id requests per service run [1000]")
    parser.add_argument("--drafts", type=int, default=100, help="related-for-text requests per service run [100]")
    parser.add_argument(
        "--compressed", action="store_true", help="also measure compressed index types at the largest size"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="print the table and draw the plot from cached results"
    )
    parser.add_argument(
        "--compressed-only", action="store_true", help="only the index-type table, on the largest cached size"
    )
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "scale.png")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    results_path = args.cache / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {"sizes": {}}

    if args.compressed_only:
        largest = max(args.sizes)
        results["compressed"] = {"size": largest, "rows": compressed(
            args.cache / f"index-{_label(largest)}", ["flat", "hnsw", "hnsw_sq8", "ivf", "ivf_sq8"])}  # fmt: skip
        results_path.write_text(json.dumps(results, indent=2))
    elif not args.report_only:
        from service_fixtures import copy_index  # noqa: F401 - fails early if tests/ is not importable

        # The service's fixed cost (interpreter, torch, the model, FastAPI), measured on the bundled demo index.
        demo = args.cache / "index-demo"
        if not (demo / "CURRENT").exists():
            subprocess.run([sys.executable, "-m", "recommender", "build", str(REPO / "recommender" / "data" / "demo_articles.jsonl"),
                            "--index-dir", str(demo)], env=subprocess_env(), check=True, capture_output=True)  # fmt: skip
        demo_ids = [f"demo-{i:03d}" for i in range(1, 101)]
        baseline_drafts = [{k: v for k, v in r.items() if k != "id"} for r in synthetic_corpus.articles(5, seed=98)]
        results["baseline"] = serve(
            demo, demo_ids, args.cache / "serve-demo.log", mmap=False, requests=100, drafts=baseline_drafts
        )
        print(f"[baseline] service on the demo index: {results['baseline']}", flush=True)
        smaller = None
        for n in sorted(args.sizes):
            label = _label(n)
            entry = results["sizes"].setdefault(str(n), {})
            entry["build"], rebuilt = build(args.cache, n, smaller, args.backend, args.rebuild, args.max_seq_length)
            print(
                f"[{label}] build: {json.dumps({k: v for k, v in entry['build'].items() if k != 'disk_files'})}",
                flush=True,
            )
            if rebuilt is not None:
                entry["rebuild"] = rebuilt
                print(
                    f"[{label}] rebuild: {json.dumps({k: v for k, v in rebuilt.items() if k != 'disk_files'})}",
                    flush=True,
                )
            index_dir = args.cache / f"index-{label}"
            ids = [f"syn-{i:07d}" for i in range(n)]
            rng = random.Random(3)
            drafts = [dict(r) for r in synthetic_corpus.articles(args.drafts, seed=99)]
            for d in drafts:
                d.pop("id")
            rng.shuffle(drafts)
            entry["serve"] = {}
            for mmap in (False, True):
                key = "mmap" if mmap else "loaded"
                entry["serve"][key] = serve(index_dir, ids, args.cache / f"serve-{label}-{key}.log", mmap=mmap,
                                            requests=args.requests, drafts=drafts)  # fmt: skip
                print(f"[{label}] service ({key}): {json.dumps(entry['serve'][key])}", flush=True)
            entry["recall"] = recall(index_dir)
            print(f"[{label}] recall: {entry['recall']}", flush=True)
            results_path.write_text(json.dumps(results, indent=2))
            smaller = n
        if args.compressed:
            largest = max(args.sizes)
            print(f"[{_label(largest)}] compressed index types ...", flush=True)
            results["compressed"] = {"size": largest, "rows": compressed(
                args.cache / f"index-{_label(largest)}", ["flat", "hnsw", "hnsw_sq8", "ivf", "ivf_sq8"])}  # fmt: skip
        results_path.write_text(json.dumps(results, indent=2))

    if results["sizes"]:
        print(table(results))
        if all("serve" in r for r in results["sizes"].values()):
            plot(results, args.plot)
            print(f"plot: {args.plot}")
    if results.get("compressed"):
        print(f"\nindex types at {_label(results['compressed']['size'])} (same vectors, 2,000 queries, one thread):\n")
        print(
            "| index type | search breadth | recall@10 vs exact | index size, MB | bytes per vector | build, s | search, ms/query |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in results["compressed"]["rows"]:
            built = "(the build's)" if r["build_s"] is None else f"{r['build_s']:.0f}"
            knob = ", ".join(f"{k} {v}" for k, v in r.get("search_params", {}).items()) or "exact"
            print(
                f"| {r['index_type']} | {knob} | {r['recall_at_10']:.4f} | {r['index_mb']:,.0f} | {r['bytes_per_vector']:,.0f} | {built} | {r['search_ms']:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
