"""Ranking ideas tried against the default on ecbplus-dev (nDCG@10), kept so the negative results can be re-run.

    python -m benchmarks.quality.ranking_experiments

Each experiment swaps one piece of ``recommender.ranking`` for a variant, runs the engine's own
``related`` path over every ecbplus-dev query, and prints nDCG@10 next to the default's. None of them
is in the product: none moved the default by more than the noise of the feedback plateau (README, "How the
defaults were chosen"). Also prints the shingle-Jaccard distribution of all article pairs, the evidence for the
near-duplicate threshold (``recommender/dedup.py``).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from benchmarks.common import REPO, machine_line

ECB = REPO.parent / "shared" / "datasets" / "ecbplus-dev"


@contextmanager
def swapped(module, name: str, value) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def name_features(articles) -> Callable:
    """TF-IDF over capitalised words that do not start a sentence (names and places) and numbers."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    months = "January February March April May June July August September October November December"
    days = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday"
    stop = (
        {w.capitalize() for w in ENGLISH_STOP_WORDS}
        | set(months.split())
        | set(days.split())
        | {"Mr", "Mrs", "Ms", "Dr"}
    )

    def names(article) -> list[str]:
        out = []
        for sentence in re.split(r"(?<=[.!?\"])\s+", f"{article.title}. {article.body}"):
            tokens = re.findall(r"[A-Za-z][\w'-]*|\d[\d,.]*", sentence)
            out += [
                t.lower()
                for j, t in enumerate(tokens)
                if (j > 0 and t[0].isupper() and t not in stop) or t[0].isdigit()
            ]
        return out

    matrix = TfidfVectorizer(analyzer=names, sublinear_tf=True).fit_transform(articles)
    return lambda positions, source: np.asarray((matrix[positions] @ matrix[source].T).toarray()).ravel()


def main() -> None:
    print(machine_line(), flush=True)
    logging.basicConfig(level=logging.WARNING)
    import recommender.engine as engine_module
    import recommender.ranking as R
    from benchmarks.quality.tune_ranking import build, ndcg
    from recommender.dedup import shingle_jaccard, story_shingles
    from recommender.embedding import Embedder
    from recommender.engine import Recommender
    from recommender.evaluation import load_qrels
    from recommender.lexical import row_dots

    embedder = Embedder()
    rec = Recommender.open(
        build("ecbplus-lead-120", ECB / "articles.jsonl", embedder, lead_words=120), embedder=embedder
    )
    qrels = load_qrels(ECB / "qrels.tsv")
    queries = sorted(q for q in qrels if q in rec)
    articles = [rec.catalog.articles[i] for i in range(rec.catalog.base_count)]
    current: dict[str, object] = {}
    original_fuse, original_rank = R._fuse, R.rank

    def rank_keeping_source(source, candidates, config, k, **kw):
        current["source"] = source
        return original_rank(source, candidates, config, k, **kw)

    def score(label: str, **overrides) -> float:
        run = {}
        for q in queries:
            current["position"] = rec.catalog.position(q)
            run[q] = [r.article.id for r in rec.related(q, 10, **overrides)]
        value = ndcg(run, qrels)
        print(f"  {label:58} {value:.4f}", flush=True)
        return value

    with swapped(engine_module, "rank", rank_keeping_source):
        print("== default and candidate pool size")
        score("default")
        for n in (30, 75, 100):
            score(f"candidates per retriever {n}", candidates=n)

        print("== pseudo-relevance feedback: documents x weight")
        for m in (2, 3, 5, 6, 8):
            for beta in (2.0, 3.0, 5.0):
                score(f"feedback {m} docs x {beta}", prf_docs=m, prf_weight=beta)

        print("== a name/number overlap feature added to the fused score")
        names = name_features(articles)
        for beta in (0.05, 0.1, 0.2, 0.3, 0.5):

            def fuse_names(c, config, beta=beta):
                return original_fuse(c, config) + beta * names(c.positions, current["position"])

            with swapped(R, "_fuse", fuse_names):
                score(f"names weight {beta}")

        print("== propagation over the candidates' similarity graph (personalised PageRank) instead of feedback")
        for alpha in (0.3, 0.5, 0.7):
            for neighbours in (5, 10, 0):

                def fuse_graph(c, config, alpha=alpha, neighbours=neighbours):
                    w = config.semantic_weight
                    r = w * c.semantic + (1 - w) * c.lexical
                    sim = w * (c.vectors @ c.vectors.T) + (1 - w) * row_dots(c.lexical_rows, c.lexical_rows)
                    np.fill_diagonal(sim, 0)
                    if neighbours:
                        np.put_along_axis(sim, np.argsort(-sim, axis=1)[:, neighbours:], 0, axis=1)
                    walk = sim / np.maximum(sim.sum(axis=0, keepdims=True), 1e-9)
                    x = r.copy()
                    for _ in range(10):
                        x = (1 - alpha) * r + alpha * (walk @ x)
                    return x

                with swapped(R, "_fuse", fuse_graph):
                    score(f"graph alpha {alpha}, {neighbours or 'all'} neighbours")

        print("== feedback documents chosen as distinct stories, not copies of the source")
        for threshold in (0.5, 0.7):

            def fuse_distinct(c, config, threshold=threshold):
                w = config.semantic_weight
                r = w * c.semantic + (1 - w) * c.lexical
                source_sig = current["source"].signature
                top: list[int] = []
                for i in np.argsort(-r, kind="stable"):
                    same = lambda a, b: float(np.mean(a == b)) >= threshold  # noqa: E731
                    if same(c.signatures[i], source_sig) or any(same(c.signatures[i], c.signatures[j]) for j in top):
                        continue
                    top.append(int(i))
                    if len(top) == config.prf_docs:
                        break
                pair = w * (c.vectors @ c.vectors[top].T) + (1 - w) * row_dots(c.lexical_rows, c.lexical_rows[top])
                return (r + config.prf_weight * pair.mean(axis=1)) / (1 + config.prf_weight)

            with swapped(R, "_fuse", fuse_distinct):
                score(f"distinct feedback documents (estimate >= {threshold} = copy)")

    print("== shingle Jaccard of every ecbplus-dev article pair (the near-duplicate threshold's evidence)")
    grams = [story_shingles(a.title, a.body) for a in articles]
    high = []
    for i in range(len(grams)):
        for j in range(i + 1, len(grams)):
            if grams[i] and grams[j] and not grams[i].isdisjoint(grams[j]):
                value = shingle_jaccard(grams[i], grams[j])
                if value >= 0.5:
                    high.append((value, articles[i].id, articles[j].id))
    print(f"  pairs at 0.5 or more: {len(high)} of {len(grams) * (len(grams) - 1) // 2}")
    print("  by tenth:", dict(sorted(Counter(min(int(v * 10) / 10, 0.9) for v, _, _ in high).items())))
    for value, a, b in sorted(high):
        if value < 0.9:
            print(f"  {value:.3f} {a} {b}")


if __name__ == "__main__":
    main()
