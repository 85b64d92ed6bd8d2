"""Property-based tests: loaders never crash or lose rows, and ranking invariants hold for any input."""

import json
import string

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender import FieldError, RankingConfig, load_articles, parse_article
from recommender.dedup import minhash_signatures
from recommender.ranking import Candidates, Source, rank

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
records = st.dictionaries(
    st.sampled_from(
        ["id", "title", "body", "summary", "url", "published_at", "section", "tags", "authors", "language", "x"]
    ),
    json_values,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(records)
def test_parse_article_accepts_or_names_a_field(record):
    try:
        article = parse_article(record)
    except FieldError as exc:
        assert exc.field in {
            "id",
            "title",
            "body",
            "summary",
            "url",
            "published_at",
            "updated_at",
            "section",
            "tags",
            "authors",
            "language",
        }
        assert exc.reason
    else:
        assert article.id and article.title.strip() and len(article.id) <= 256


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(records.map(json.dumps), st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s)),
        min_size=1,
        max_size=20,
    )
)
def test_every_jsonl_row_is_loaded_or_rejected(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("p") / "x.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    non_blank = sum(1 for line in lines if line.encode("utf-8").strip())  # bytes semantics, as the loader reads
    if not non_blank:
        return
    result = load_articles([path])
    assert result.rows == non_blank
    assert len(result.articles) + len(result.rejects) + result.duplicates == non_blank
    assert all(r.line >= 1 and r.field and r.reason for r in result.rejects)


words = st.lists(st.sampled_from(list(string.ascii_lowercase[:8])), min_size=1, max_size=30).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-1, 1), st.floats(0, 1), words), min_size=1, max_size=25),
    words,
    st.integers(1, 12),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_ranking_invariants(cands, source_text, k, w, diversity):
    n = len(cands)
    rng = np.random.default_rng(n)
    vecs = rng.normal(size=(n, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    texts = [t for _, _, t in cands]
    c = Candidates(
        positions=np.arange(n),
        semantic=np.array([s for s, _, _ in cands], np.float32),
        lexical=np.array([lex for _, lex, _ in cands], np.float32),
        vectors=vecs,
        signatures=minhash_signatures(texts),
        published=np.full(n, np.nan),
        sections=np.array([None] * n, dtype=object),
        tags=[frozenset()] * n,
    )
    source = Source(
        vector=vecs[0],
        signature=minhash_signatures([source_text])[0],
        published=float("nan"),
        section=None,
        tags=frozenset(),
    )
    config = RankingConfig(semantic_weight=w, diversity=diversity, prf_docs=0)
    items = rank(source, c, config, k)
    assert len(items) <= k
    positions = [i.position for i in items]
    assert len(set(positions)) == len(positions)
    for i in items:  # never a near-duplicate of the source
        assert (c.signatures[i.position] == source.signature).mean() < config.near_duplicate_threshold
    for a in range(len(items)):  # never two near-duplicates in one list
        for b in range(a + 1, len(items)):
            assert (
                c.signatures[items[a].position] == c.signatures[items[b].position]
            ).mean() < config.near_duplicate_threshold
    if diversity == 0:
        scores = [i.score for i in items]
        assert scores == sorted(scores, reverse=True)
    # Short only when near-duplicates were removed: every candidate left out is a duplicate of the source or of a pick.
    if len(items) < k:
        for p in set(range(n)) - set(positions):
            sims = [(c.signatures[p] == source.signature).mean()] + [
                (c.signatures[p] == c.signatures[q]).mean() for q in positions
            ]
            assert max(sims) >= config.near_duplicate_threshold
