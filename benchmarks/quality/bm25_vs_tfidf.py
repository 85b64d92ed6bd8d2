"""Lexical weighting by measurement: the build's TF-IDF against BM25 weights, lexical-only, on ecbplus-dev.

    python -m benchmarks.quality.bm25_vs_tfidf

The ranking issue allows "scikit-learn TF-IDF, or BM25 if it measures better". Both sides use the same tokens
(the build's vectorizer settings: unigrams and bigrams, English stop words, min_df 2, max_df 0.5) and the
same article-to-article use: each article is a query against every other, ranked by the cosine of the two
weighted vectors (BM25 is a query-document score; for "related to this article" both sides are documents, so
both get BM25 term weights and are compared by cosine, the usual symmetric form). Prints nDCG@10 (graded
qrels, trec_eval gains, via ir-measures) for TF-IDF and a small BM25 grid (k1, b).
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.sparse as sp

from benchmarks.common import REPO, machine_line

ECB = REPO.parent / "shared" / "datasets" / "ecbplus-dev"


def bm25_matrix(counts: sp.csr_matrix, k1: float, b: float) -> sp.csr_matrix:
    """Okapi BM25 term weights per document (Robertson-Sparck Jones idf, +1 to keep it positive), L2-normalised."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    norm = k1 * (1.0 - b + b * lengths / max(lengths.mean(), 1e-9))
    rows = np.repeat(np.arange(n), np.diff(counts.indptr))
    tf = counts.data
    weights = counts.copy()
    weights.data = idf[counts.indices] * tf * (k1 + 1.0) / (tf + norm[rows])
    norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ weights)


def ranked(matrix: sp.csr_matrix, ids: list[str], k: int = 10) -> dict[str, list[str]]:
    sims = (matrix @ matrix.T).toarray()
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return {ids[i]: [ids[j] for j in row] for i, row in enumerate(top)}


def main() -> int:
    print(machine_line(), flush=True)
    from sklearn.feature_extraction.text import CountVectorizer

    from recommender.evaluation import load_qrels, ranking_metrics
    from recommender.lexical import LexicalModel
    from recommender.loading import load_articles
    from recommender.text import lexical_text

    articles = load_articles([ECB / "articles.jsonl"]).articles
    qrels = load_qrels(ECB / "qrels.tsv")
    ids = [a.id for a in articles]
    texts = [lexical_text(a) for a in articles]
    score = lambda run: ranking_metrics(run, qrels, cutoffs=(10,), metrics=("ndcg",))["ndcg@10"]  # noqa: E731

    tfidf = LexicalModel().fit(texts)
    print(f"TF-IDF (the build's LexicalModel)   nDCG@10 {score(ranked(tfidf.matrix_, ids)):.4f}")
    p = tfidf.params
    counts = CountVectorizer(
        stop_words=p.stop_words, min_df=p.min_df, max_df=p.max_df, ngram_range=(1, p.ngram_max)
    ).fit_transform(texts)
    for k1 in (0.9, 1.2, 1.6, 2.0):
        for b in (0.5, 0.75, 1.0):
            print(f"BM25 k1={k1:<4} b={b:<5}            nDCG@10 {score(ranked(bm25_matrix(counts, k1, b), ids)):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
