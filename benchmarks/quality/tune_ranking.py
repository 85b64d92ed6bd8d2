"""Choose the text preparation and the ranking defaults by measurement (tune on ecbplus-dev, confirm on reuters).

    python -m benchmarks.quality.tune_ranking                       # text variants + fusion grid on ecbplus-dev
    python -m benchmarks.quality.tune_ranking --confirm-reuters     # also the chosen default vs baselines on reuters21578

Indexes are cached outside the repository (~/.cache/related-articles/bench). Prints tables of nDCG@10.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from benchmarks.common import REPO, machine_line

SHARED = REPO.parent / "shared" / "datasets"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "related-articles" / "bench"


def build(name: str, export: Path, embedder, **settings_kw):
    from recommender.build import build_index
    from recommender.settings import Settings

    settings = Settings(index_dir=CACHE / name, max_reject_share=0.05, **settings_kw)
    report = build_index([export], settings, embedder=embedder, progress=True)
    print(f"  built {name}: {report.summary()}", flush=True)
    return settings.index_dir


def run_engine(rec, queries, k=10, **overrides):
    return {q: [r.article.id for r in rec.related(q, k, **overrides)] for q in queries if q in rec}


def ndcg(run, qrels):
    from recommender.evaluation import ranking_metrics

    return ranking_metrics(run, qrels, cutoffs=(10,), metrics=("ndcg",))["ndcg@10"]


def main() -> None:
    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--confirm-reuters", action="store_true")
    parser.add_argument("--reuters-queries", type=int, default=2000, help="seeded sample of reuters queries")
    parser.add_argument("--reuters-only", action="store_true", help="skip the ecbplus-dev tuning")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from recommender.embedding import Embedder
    from recommender.engine import Recommender
    from recommender.evaluation import EmbeddingSystem, TfidfSystem, load_qrels
    from recommender.loading import load_articles

    embedder = Embedder()
    ecb = SHARED / "ecbplus-dev"
    qrels = load_qrels(ecb / "qrels.tsv")
    articles = load_articles([ecb / "articles.jsonl"]).articles
    queries = sorted(qrels)
    results: dict[str, dict[str, float]] = {"text": {}, "fusion": {}}

    if args.reuters_only:
        variants = {}
    print("== text preparation: raw embedding cosine nDCG@10 on ecbplus-dev", flush=True)
    variants = {
        "title": dict(text_strategy="title"),
        "lead-60": dict(lead_words=60),
        "lead-120": dict(lead_words=120),
        "lead-200": dict(lead_words=200),
    }
    if args.reuters_only:
        variants = {}
    for name, kw in variants.items():
        index_dir = build(f"ecbplus-{name}", ecb / "articles.jsonl", embedder, **kw)
        rec = Recommender.open(index_dir, embedder=embedder)
        vectors = rec.store.vectors
        aligned = vectors[[rec.store.position(a.id) for a in articles]]
        system = EmbeddingSystem(articles, aligned)
        score = ndcg({q: system.recommend(q, 10) for q in queries}, qrels)
        results["text"][name] = round(score, 4)
        print(f"  {name:10} {score:.4f}", flush=True)

    if args.reuters_only:
        return confirm_reuters(args, embedder, results)
    tfidf = TfidfSystem(articles)
    results["tfidf"] = round(ndcg({q: tfidf.recommend(q, 10) for q in queries}, qrels), 4)
    print(f"== TF-IDF baseline {results['tfidf']:.4f}")

    best_text = max(results["text"], key=results["text"].get)
    print(f"== fusion grid on ecbplus-dev with text {best_text} (feedback off)", flush=True)
    rec = Recommender.open(CACHE / f"ecbplus-{best_text}", embedder=embedder)
    for fusion in ("weighted", "rrf"):
        for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0):
            score = ndcg(run_engine(rec, queries, fusion=fusion, semantic_weight=w, prf_docs=0), qrels)
            results["fusion"][f"{fusion}:{w}"] = round(score, 4)
            print(f"  {fusion:8} w={w:<4} {score:.4f}", flush=True)
    print("== pseudo-relevance feedback grid (weighted fusion)", flush=True)
    results["feedback"] = {}
    for w in (0.15, 0.2, 0.25, 0.3):
        for m in (3, 4):
            for beta in (2.0, 3.0, 5.0):
                score = ndcg(run_engine(rec, queries, semantic_weight=w, prf_docs=m, prf_weight=beta), qrels)
                results["feedback"][f"w={w} docs={m} weight={beta}"] = round(score, 4)
                print(f"  w={w:<4} docs={m} weight={beta:<3} {score:.4f}", flush=True)
    print("== ablation of the default", flush=True)
    d = rec.config
    ablation = {
        "default": {},
        "no feedback": {"prf_docs": 0},
        "no lexical (semantic only)": {"semantic_weight": 1.0, "prf_docs": 0},
        "no semantic (lexical only)": {"semantic_weight": 0.0, "prf_docs": 0},
        "rrf fusion instead of weighted": {"fusion": "rrf"},
        "near-duplicate removal off": {"near_duplicate_threshold": 1.0},
        "near-duplicate threshold 0.5": {"near_duplicate_threshold": 0.5},
        "diversity 0.1": {"diversity": 0.1},
        "diversity 0.3": {"diversity": 0.3},
    }
    results["ablation"] = {}
    for name, overrides in ablation.items():
        start = time.perf_counter()
        score = ndcg(run_engine(rec, queries, **overrides), qrels)
        ms = (time.perf_counter() - start) * 1000 / len(queries)
        results["ablation"][name] = round(score, 4)
        print(f"  {name:34} {score:.4f}  ({ms:.1f} ms/query)", flush=True)
    print(f"  (default: {d})")

    if args.confirm_reuters:
        confirm_reuters(args, embedder, results)
    else:
        print(json.dumps(results, indent=2))


def confirm_reuters(args, embedder, results) -> None:
    from recommender.engine import Recommender
    from recommender.evaluation import EmbeddingSystem, TfidfSystem

    if True:
        import random

        from recommender.evaluation import qrels_from_labels

        reuters = SHARED / "reuters21578" / "articles.jsonl"
        print("== reuters21578 (topics, Jaccard) confirmation", flush=True)
        index_dir = build("reuters21578", reuters, embedder)
        rec = Recommender.open(index_dir, embedder=embedder)
        r_articles = [rec.catalog.articles[i] for i in range(rec.catalog.base_count)]
        r_qrels = qrels_from_labels(r_articles, "topics", grading="jaccard")
        with_body = {a.id for a in r_articles if a.body.strip()}
        r_queries = sorted(q for q in r_qrels if q in with_body)
        random.Random(0).shuffle(r_queries)
        r_queries = sorted(r_queries[: args.reuters_queries])
        sub = {q: r_qrels[q] for q in r_queries}
        results["reuters"] = {}
        for fusion, w in (("weighted", rec.config.semantic_weight), ("weighted", 0.0), ("weighted", 1.0)):
            score = ndcg(run_engine(rec, r_queries, fusion=fusion, semantic_weight=w), sub)
            results["reuters"][f"{fusion}:{w}"] = round(score, 4)
            print(f"  engine {fusion} w={w}: {score:.4f}", flush=True)
        r_tfidf = TfidfSystem(r_articles)
        score = ndcg({q: r_tfidf.recommend(q, 10) for q in r_queries}, sub)
        results["reuters"]["tfidf"] = round(score, 4)
        print(f"  tfidf baseline: {score:.4f}")
        r_emb = EmbeddingSystem(r_articles, rec.store.vectors[: rec.catalog.base_count])
        score = ndcg({q: r_emb.recommend(q, 10) for q in r_queries}, sub)
        results["reuters"]["embedding"] = round(score, 4)
        print(f"  embedding baseline: {score:.4f}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
