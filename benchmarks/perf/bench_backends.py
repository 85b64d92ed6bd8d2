"""Embedding backends on real news (issue 19): throughput, draft latency and top-10 agreement, each against
float32 in the same run, and what ``auto`` picks.

    python -m benchmarks.perf.bench_backends                          # reuters21578 1,200 + ecbplus-dev 496 articles
    python -m benchmarks.perf.bench_backends --corpora PATH:2000 --drafts 200 --backends float32,bf16,openvino-bf16
    python -m benchmarks.perf.bench_backends --json results.json

Texts are read with the project's ``load_articles`` and ``embedding_text`` (lead strategy, 120 words), so their
token lengths are what builds embed. Per backend:

* articles/s: the sample embedded at the build's batch size (64), in chunks interleaved across backends (the
  order rotates per chunk), so a load that comes or goes during the run hits every backend alike; the ratio is
  to float32's articles/s in the same run.
* top-10 agreement: mean over articles of |top-10 neighbours by the backend ∩ top-10 by float32| / 10, within the
  sample (self excluded), and the lowest per-article cosine to the float32 vector.
* draft p50/p99: ``encode([one text])`` latency in ms over ``--drafts`` single texts from the corpus (real
  lengths: a headline-only item pads to its own length, not to 256), interleaved across backends.
* auto: the selection ``auto`` makes on this machine (``backends/select.py``, measured afresh into a temporary
  cache unless ``--cached-auto``), and the ratio and agreement of the backend it chose, from this run.

Every figure is printed with the CPU model and ``os.getloadavg()``: other jobs share these machines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED_DATASETS as DATASETS

DEFAULT_CORPORA = f"{DATASETS / 'reuters21578' / 'articles.jsonl'}:1200,{DATASETS / 'ecbplus-dev' / 'articles.jsonl'}:0"


def _load(spec: str, seed: int) -> list[str]:
    """``path:N`` -> N random articles' embedding texts (N=0: all)."""
    from recommender.loading import load_articles
    from recommender.text import embedding_text

    path, _, n = spec.rpartition(":")
    articles = load_articles([Path(path)], title_from_body=True).articles
    if int(n) and int(n) < len(articles):
        articles = random.Random(seed).sample(articles, int(n))
    return [embedding_text(a) for a in articles]


def _stamp() -> str:
    from recommender.backends.cache import machine

    m = machine()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"[{m['cpu']}, {m['cores']} cores, flags {'/'.join(m['cpu_flags'])}; load {load}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", default=DEFAULT_CORPORA, help="comma-separated path:N (N=0: every article)")
    parser.add_argument("--backends", default="float32,bf16,onnx,onnx-int8,openvino,openvino-bf16")
    parser.add_argument("--chunks", type=int, default=8, help="interleaved timing chunks")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--drafts", type=int, default=100, help="single-text encodes per backend")
    parser.add_argument("--cached-auto", action="store_true", help="use this machine's cached auto selection")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    from recommender.backends import unavailable
    from recommender.backends.model import read_model_spec
    from recommender.backends.select import backend_selection, format_table, top_k_agreement
    from recommender.backends.tokens import Tokens
    from recommender.embedding import DEFAULT_MODEL, Embedder, resolve_model

    rng = random.Random(19)
    corpora: dict[str, list[str]] = {}
    for spec in args.corpora.split(","):
        corpora[Path(spec.rpartition(":")[0]).parent.name] = _load(spec, seed=19)
    texts = [t for group in corpora.values() for t in group]
    bounds, start = {}, 0
    for name, group in corpora.items():
        bounds[name] = (start, start + len(group))
        start += len(group)
    model_spec = read_model_spec(*resolve_model(DEFAULT_MODEL), 256)
    lengths = [len(x) for x in Tokens(model_spec).ids(texts)]
    out: dict = {
        "corpora": {k: len(v) for k, v in corpora.items()},
        "tokens": {
            "p50": statistics.median(lengths),
            "mean": round(statistics.fmean(lengths), 1),
            "share_at_256": round(sum(n >= 256 for n in lengths) / len(lengths), 3),
        },
    }
    print(
        f"{len(texts)} articles ({', '.join(f'{k} {v}' for k, v in out['corpora'].items())}); word pieces "
        f"p50 {out['tokens']['p50']}, mean {out['tokens']['mean']}, {out['tokens']['share_at_256']:.1%} at 256 "
        f"{_stamp()}",
        flush=True,
    )

    # 1. what auto picks on this machine (its own fixed 256-text sample)
    cache = None if args.cached_auto else tempfile.mkdtemp(prefix="bench-backends-")
    started = time.perf_counter()
    selection = backend_selection(DEFAULT_MODEL, 256, cache=cache, refresh=not args.cached_auto)
    out["auto"] = {
        "choice": selection.choice,
        "seconds": round(time.perf_counter() - started, 1),
        "selection": selection.to_dict(),
    }
    print(format_table(selection), _stamp(), flush=True)

    # 2. every backend on the corpus sample, interleaved chunk by chunk
    names = [b for b in args.backends.split(",") if b]
    if "float32" not in names:
        names.insert(0, "float32")
    embedders: dict[str, Embedder] = {}
    skipped: dict[str, str] = {}
    for name in names:
        reason = unavailable(name, model_spec)
        if reason:
            skipped[name] = reason
            print(f"{name:14} skipped: {reason}", flush=True)
            continue
        emb = Embedder(backend=name, batch_size=args.batch_size, max_seq_length=256, cache_dir=cache)
        emb.encode(texts[:16])
        embedders[name] = emb
    order = list(embedders)
    seconds = dict.fromkeys(order, 0.0)
    parts: dict[str, list[np.ndarray]] = {n: [] for n in order}
    step = -(-len(texts) // args.chunks)
    for c, lo in enumerate(range(0, len(texts), step)):
        chunk = texts[lo : lo + step]
        for name in order[c % len(order) :] + order[: c % len(order)]:
            t = time.perf_counter()
            parts[name].append((lo, embedders[name].encode(chunk)))
            seconds[name] += time.perf_counter() - t
    vectors = {n: np.vstack([v for _, v in sorted(parts[n], key=lambda p: p[0])]) for n in order}

    # 3. drafts: one text per call
    drafts = rng.sample(texts, min(args.drafts, len(texts)))
    latency: dict[str, list[float]] = {n: [] for n in order}
    for i, text in enumerate(drafts):
        for name in order[i % len(order) :] + order[: i % len(order)]:
            t = time.perf_counter()
            embedders[name].encode([text])
            latency[name].append((time.perf_counter() - t) * 1000)

    ref = vectors["float32"]
    base = len(texts) / seconds["float32"]
    rows = {}
    for name in order:
        v = vectors[name]
        rate = len(texts) / seconds[name]
        per_corpus = {k: round(top_k_agreement(v[a:b], ref[a:b]), 4) for k, (a, b) in bounds.items()}
        ms = sorted(latency[name])
        rows[name] = {
            "articles_per_s": round(rate, 1),
            "ratio_vs_float32": round(rate / base, 2),
            "top10_agreement": round(top_k_agreement(v, ref), 4),
            "top10_agreement_by_corpus": per_corpus,
            "min_cosine": round(float((v * ref).sum(axis=1).min()), 5),
            "draft_p50_ms": round(statistics.median(ms), 1),
            "draft_p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
            "precision": embedders[name].describe().get("precision"),
        }
        r = rows[name]
        print(
            f"{name:14} {r['articles_per_s']:7.1f} articles/s  {r['ratio_vs_float32']:5.2f}x float32  top-10 "
            f"{r['top10_agreement']:.3f} ({', '.join(f'{k} {x:.3f}' for k, x in per_corpus.items())})  min cos "
            f"{r['min_cosine']:.4f}  draft p50 {r['draft_p50_ms']:.1f} ms p99 {r['draft_p99_ms']:.1f} ms "
            f"{_stamp()}",
            flush=True,
        )
    out["backends"] = rows
    out["skipped"] = skipped
    chosen = rows.get(selection.choice)
    if chosen:
        verdict = chosen["ratio_vs_float32"] >= 3 and chosen["top10_agreement"] >= 0.99
        out["auto"].update(
            ratio_vs_float32=chosen["ratio_vs_float32"], top10_agreement=chosen["top10_agreement"], target_met=verdict
        )
        print(
            f"auto -> {selection.choice}: {chosen['ratio_vs_float32']:.2f}x float32, top-10 agreement "
            f"{chosen['top10_agreement']:.3f} (target >= 3x with >= 0.99 where the CPU has AMX or AVX512-bf16: "
            f"{'met' if verdict else 'NOT met'}) {_stamp()}",
            flush=True,
        )
    out["machine_at_end"] = _stamp()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in out.items() if k != "auto"} | {"auto_choice": out["auto"]["choice"]}, indent=2))


if __name__ == "__main__":
    main()
