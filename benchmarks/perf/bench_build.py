"""Build benchmarks (issue: nightly rebuilds), each printed as a same-run ratio because these machines are noisy.

    python -m benchmarks.perf.bench_build                            # reuters21578, float32
    python -m benchmarks.perf.bench_build --limit 5000 --backends float32,bf16

1. Full build end-to-end articles/s divided by raw ``model.encode`` articles/s on the same texts and backend
   (target >= 0.9: everything but embedding must be cheap).
2. Incremental rebuild after changing 1% of the articles: full build time / incremental time (target >= 20).
3. Embedding backends: throughput and top-10 neighbour overlap against float32 on a sample of the corpus.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, machine_line

DEFAULT = REPO.parent / "shared" / "datasets" / "reuters21578" / "articles.jsonl"


def main() -> None:
    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=Path, default=DEFAULT)
    parser.add_argument("--limit", type=int, default=None, help="first N rows only")
    parser.add_argument("--backend", default="float32")
    parser.add_argument("--backends", default="float32,bf16", help="for the backend table")
    parser.add_argument("--sample", type=int, default=2000, help="articles for the backend table")
    parser.add_argument("--skip-full", action="store_true", help="only the backend table")
    args = parser.parse_args()

    from recommender.build import build_index
    from recommender.embedding import Embedder
    from recommender.loading import load_articles
    from recommender.settings import Settings
    from recommender.text import embedding_text

    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    lines = args.articles.read_text(encoding="utf-8").splitlines()
    if args.limit:
        lines = lines[: args.limit]
    export = work / "export.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = Settings(index_dir=work / "idx", max_reject_share=0.05, embedding_backend=args.backend)
    articles = load_articles([export], title_from_body=True).articles
    texts = [embedding_text(a, lead_words=settings.lead_words) for a in articles]
    out: dict = {"articles": len(articles), "backend": args.backend}
    embedder = Embedder(
        settings.model, backend=args.backend, batch_size=settings.batch_size, max_seq_length=settings.max_seq_length
    )

    if not args.skip_full:
        # 1. raw encode vs full build, same texts, same backend, same process, the model warmed up first. The raw
        # encode runs before and after the build and the reference is their mean, so a load that comes or goes
        # during the run (the noise these machines have) biases neither side.
        embedder.encode(texts[:64])
        start = time.perf_counter()
        embedder.encode(texts)
        raw_before = time.perf_counter() - start
        start = time.perf_counter()
        full = build_index([export], settings, embedder=embedder, progress=False, full=True)
        full_s = time.perf_counter() - start
        start = time.perf_counter()
        embedder.encode(texts)
        raw_after = time.perf_counter() - start
        raw = (raw_before + raw_after) / 2
        other = full_s - full.timings.get("embed", 0.0)
        out["raw_encode_s"] = {"before": round(raw_before, 1), "after": round(raw_after, 1)}
        out["raw_encode_articles_per_s"] = round(len(texts) / raw, 1)
        out["full_build_articles_per_s"] = round(len(texts) / full_s, 1)
        out["full_build_stages_s"] = full.timings
        out["ratio_build_vs_raw_encode"] = round(raw / full_s, 3)
        # What the build adds to embedding, independent of how fast embedding ran: raw / (raw + everything else).
        out["ratio_overhead_only"] = round(raw / (raw + other), 3)
        print(
            f"full build {full_s:.1f}s ({len(texts) / full_s:.1f}/s) vs raw encode {raw:.1f}s ({len(texts) / raw:.1f}/s; "
            f"{raw_before:.1f}s before, {raw_after:.1f}s after): ratio {raw / full_s:.3f} (target >= 0.9); "
            f"non-embedding stages {other:.1f}s: raw / (raw + them) {raw / (raw + other):.3f}",
            flush=True,
        )

        # 2. incremental after changing 1%
        rng = random.Random(0)
        records = [json.loads(line) for line in lines if line.strip()]
        for i in rng.sample(range(len(records)), max(1, len(records) // 100)):
            records[i]["title"] = (records[i].get("title") or "") + " (updated)"
        export.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
        start = time.perf_counter()
        incr = build_index([export], settings, embedder=embedder, progress=False)
        incr_s = time.perf_counter() - start
        out["incremental_s"] = round(incr_s, 2)
        out["incremental_stages_s"] = incr.timings
        out["incremental_counts"] = incr.counts
        out["ratio_full_vs_incremental"] = round(full_s / incr_s, 1)
        print(
            f"incremental (1% changed: {incr.counts['changed']} re-embedded) {incr_s:.1f}s: {full_s / incr_s:.1f}x faster than full (target >= 20)",
            flush=True,
        )

    # 3. backend table
    rng = random.Random(1)
    sample = [texts[i] for i in sorted(rng.sample(range(len(texts)), min(args.sample, len(texts))))]
    table = {}
    reference = None
    for backend in args.backends.split(","):
        emb = Embedder(
            settings.model, backend=backend, batch_size=settings.batch_size, max_seq_length=settings.max_seq_length
        )
        emb.encode(sample[:64])  # warm-up
        start = time.perf_counter()
        vecs = emb.encode(sample)
        secs = time.perf_counter() - start
        sims = vecs @ vecs.T
        np.fill_diagonal(sims, -np.inf)
        top = np.argsort(-sims, axis=1)[:, :10]
        if reference is None:
            reference = top
        overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, reference)]))
        table[backend] = {"articles_per_s": round(len(sample) / secs, 1), "top10_overlap_vs_float32": round(overlap, 3)}
        print(
            f"backend {backend:8} {len(sample) / secs:7.1f} articles/s  top-10 overlap vs float32 {overlap:.3f}",
            flush=True,
        )
    base = table[args.backends.split(",")[0]]["articles_per_s"]
    for row in table.values():
        row["speedup_vs_first"] = round(row["articles_per_s"] / base, 2)
    out["backends"] = table
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
