"""Baseline systems and the evaluation runner, on tiny hand-made corpora (and ECB+ dev when available)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommender.article import Article, parse_article
from recommender.errors import ArticleNotFoundError, ConfigurationError
from recommender.evaluation import (
    EmbeddingSystem,
    EvaluationError,
    FunctionSystem,
    MostRecentSystem,
    RandomSystem,
    RecentSameSectionSystem,
    System,
    TfidfSystem,
    curve_cutoffs,
    evaluate,
    format_comparisons,
    format_table,
    load_qrels,
    qrels_from_labels,
)
from tests.support.paths import shared_dataset

T0 = datetime(2024, 3, 1, tzinfo=UTC)

TEXTS = {
    "rates1": ("Central bank raises interest rates", "The central bank raised interest rates to fight inflation."),
    "rates2": ("Interest rates rise again", "Inflation pushed the central bank to raise rates once more."),
    "rates3": ("Bank holds rates", "The central bank kept interest rates steady as inflation cooled."),
    "match1": ("Cup final won on penalties", "The football club won the cup final on penalties."),
    "match2": ("Club celebrates cup win", "Fans of the football club celebrated the cup final win."),
    "match3": ("Coach praises team after final", "The coach said the football team deserved the cup."),
    "storm1": ("Storm floods coastal towns", "Heavy storm rain flooded coastal towns overnight."),
    "storm2": ("Storm damage counted", "Coastal towns counted flood damage after the storm."),
}
SECTIONS = {"rates": "economy", "match": "sport", "storm": "weather"}


def corpus() -> list[Article]:
    articles = []
    for i, (article_id, (title, body)) in enumerate(TEXTS.items()):
        story = article_id.rstrip("0123456789")
        articles.append(
            Article(
                id=article_id,
                title=title,
                body=body,
                section=SECTIONS[story],
                published_at=T0 + timedelta(days=i),
                extra={"story": story},
            )
        )
    return articles


# ------------------------------------------------------------------------------------------------ baselines


def test_builtin_systems_satisfy_protocol_and_never_return_the_query():
    articles = corpus()
    vectors = np.eye(len(articles))
    systems = [
        RandomSystem(articles, seed=1),
        MostRecentSystem(articles),
        RecentSameSectionSystem(articles),
        TfidfSystem(articles, vectorizer_params={"max_df": 0.9}),
        EmbeddingSystem(articles, vectors),
    ]
    for system in systems:
        assert isinstance(system, System)
        for article in articles:
            got = system.recommend(article.id, 3)
            assert article.id not in got
            assert len(got) == len(set(got)) <= 3
        assert system.recommend("rates1", 0) == []
        with pytest.raises(ArticleNotFoundError) as info:
            system.recommend("missing", 3)
        assert str(info.value) == "article not found: 'missing'"
        with pytest.raises(ValueError) as info:
            system.recommend("rates1", -1)
        assert str(info.value) == "k must be a non-negative integer, got -1"


def test_random_is_seeded_per_query_and_order_independent():
    articles = corpus()
    one, two = RandomSystem(articles, seed=3), RandomSystem(articles, seed=3)
    first = [one.recommend(a.id, 4) for a in articles]
    second = [two.recommend(a.id, 4) for a in reversed(articles)][::-1]
    assert first == second
    assert sorted(one.recommend("rates1", 100)) == sorted(a.id for a in articles if a.id != "rates1")


def test_most_recent_orders_by_date_then_id_and_puts_undated_last():
    articles = [
        Article(id="b", title="b", published_at=T0),
        Article(id="a", title="a", published_at=T0),
        Article(id="new", title="n", published_at=T0 + timedelta(hours=1)),
        Article(id="undated", title="u"),
    ]
    system = MostRecentSystem(articles)
    assert system.recommend("undated", 3) == ["new", "a", "b"]  # tie at T0 broken by id
    assert system.recommend("new", 5) == ["a", "b", "undated"]


def test_recent_same_section_fills_from_overall_recency():
    system = RecentSameSectionSystem(corpus())
    # storm2 (newest weather) first, then the newest overall (match3, match2 ...)
    assert system.recommend("storm1", 3) == ["storm2", "match3", "match2"]
    assert system.recommend("rates1", 2) == ["rates3", "rates2"]


def test_tfidf_finds_same_story_and_rejects_tiny_corpus():
    system = TfidfSystem(corpus())
    assert set(system.recommend("rates1", 2)) == {"rates2", "rates3"}
    assert system.recommend("storm1", 5)[0] == "storm2"
    with pytest.raises(ConfigurationError) as info:
        TfidfSystem([Article(id="x", title="one"), Article(id="y", title="two")])
    assert str(info.value).startswith("TF-IDF cannot be fitted on this corpus (2 articles): ")


def test_embedding_system_ranks_by_cosine_and_validates_shape():
    articles = corpus()[:4]
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [5.0, 0.2]])  # unnormalised on purpose
    system = EmbeddingSystem(articles, vectors)
    assert system.recommend("rates1", 3) == ["match1", "rates2", "rates3"]  # cos 0.9992, 0.9939, 0
    with pytest.raises(ConfigurationError) as info:
        EmbeddingSystem(articles, np.zeros((3, 2)))
    assert str(info.value) == "vectors must have shape (len(articles)=4, dim), got (3, 2)"
    with pytest.raises(ConfigurationError) as info:
        EmbeddingSystem(articles, np.full((4, 2), np.nan))
    assert str(info.value) == "vectors contain NaN or infinite values"


def test_function_system_and_corpus_errors():
    system = FunctionSystem("engine", lambda q, k: (x for x in ["a", "b", "c"][:k]))
    assert system.recommend("q", 2) == ["a", "b"]
    with pytest.raises(ValueError) as info:
        FunctionSystem("", lambda q, k: [])
    assert str(info.value) == "name must be a non-empty string"
    with pytest.raises(ConfigurationError) as info:
        MostRecentSystem([Article(id="a", title="a"), Article(id="a", title="b")])
    assert str(info.value) == "duplicate article id 'a' in the corpus"
    with pytest.raises(ConfigurationError) as info:
        MostRecentSystem([])
    assert str(info.value) == "cannot build a system on an empty corpus"


# ------------------------------------------------------------------------------------------------ evaluate


def oracle(qrels):
    return FunctionSystem("oracle", lambda q, k: sorted(qrels.get(q, {}), key=lambda d: (-qrels[q][d], d))[:k])


def test_evaluate_end_to_end_with_beyond_accuracy():
    articles = corpus()
    qrels = qrels_from_labels(articles, "story")
    vectors = np.random.default_rng(0).normal(size=(len(articles), 4))
    popularity = {a.id: i + 1 for i, a in enumerate(articles)}
    systems = [oracle(qrels), MostRecentSystem(articles), TfidfSystem(articles)]
    result = evaluate(
        systems,
        qrels,
        cutoffs=(2, 3),
        articles=articles,
        vectors=vectors,
        popularity=popularity,
        near_duplicate=lambda s, i: False,
        progress=False,
        n_bootstrap=200,
    )
    assert result.systems == ["oracle", "most_recent", "tfidf"]
    assert result.baseline == "oracle"
    assert result.queries == sorted(a.id for a in articles)
    assert result.means["oracle"]["ndcg@3"] == pytest.approx(1.0)
    assert result.means["oracle"]["recall@3"] == pytest.approx(1.0)
    for key in (
        "catalog_coverage@3",
        "intra_list_diversity@3",
        "novelty@3",
        "freshness_median_days@3",
        "near_duplicate_rate@3",
        "duplicate_pair_rate@3",
        "self_recommendation_rate@3",
        "latency_p50_ms",
        "latency_p99_ms",
    ):
        assert key in result.means["tfidf"], key
    assert result.curve_ks == (1, 2, 3)
    assert set(result.curves["tfidf"]["ndcg"]) == {1, 2, 3}
    assert result.curves["oracle"]["ndcg"][3] == pytest.approx(result.means["oracle"]["ndcg@3"])
    assert set(result.per_query["tfidf"]["rates1"]) == set(result.ranking_keys)
    assert len(result.latencies_ms["tfidf"]) == len(result.queries)
    assert {(c.system, c.metric) for c in result.comparisons} == {
        (s, key) for s in ("most_recent", "tfidf") for key in result.ranking_keys
    }
    assert result.unknown is not None and result.unknown.count == 0
    assert result.health["tfidf"]["failed_queries"] == 0
    assert result.meta["queries"] == len(articles)
    assert "ndcg@3" in format_table(result)


def test_evaluate_counts_faults_instead_of_hiding_them(caplog):
    articles = corpus()
    qrels = {
        "rates1": {"rates2": 1},
        "match1": {"match2": 1},
        "storm1": {"storm2": 1},
        "ghost": {"rates1": 1, "nowhere": 1},
    }

    def sloppy(query_id, k):
        if query_id == "match1":
            raise ArticleNotFoundError(query_id)
        if query_id == "storm1":
            return []
        return [query_id, "match2", "match2", "unknown-id"] + ["storm2"] * 20

    with caplog.at_level(logging.WARNING):
        result = evaluate([FunctionSystem("sloppy", sloppy)], qrels, cutoffs=(5,), articles=articles, progress=False)
    # rates1 and ghost get [self, match2, match2, unknown-id, storm2] after truncation to k = 5
    assert result.health["sloppy"] == {
        "failed_queries": 1,  # match1
        "empty_lists": 1,  # storm1
        "over_k_lists": 2,
        "duplicate_items": 2,  # match2 twice, in two lists
        "self_recommendations": 2,
        "unknown_recommended_ids": 3,  # unknown-id twice, and "ghost" itself
    }
    assert result.runs["sloppy"]["rates1"] == ["rates1", "match2", "unknown-id", "storm2"]
    assert result.runs["sloppy"]["match1"] == []
    assert result.means["sloppy"]["self_recommendation_rate@5"] == pytest.approx(2 / 4)
    assert result.unknown.queries == ("ghost",) and result.unknown.docs == ("nowhere",)
    assert result.meta["unknown_ids"]["unknown_query_ids"] == 1
    assert result.comparisons == []  # one system: nothing to compare
    assert "system 'sloppy' failed on 1 of 4 queries (first: 'match1': article not found: 'match1')" in caplog.text


@pytest.mark.parametrize(
    "systems, kwargs, error, message",
    [
        ([], {}, EvaluationError, "no systems to evaluate"),
        (["dup", "dup"], {}, EvaluationError, "duplicate system name 'dup': names key every result"),
        (["a"], {"cutoffs": (0,)}, ValueError, "cutoffs must be positive integers, got 0"),
        (
            ["a"],
            {"metrics": ["auc"]},
            ValueError,
            "unknown metric 'auc'; allowed: ndcg, precision, recall, mrr, map, hit_rate",
        ),
        (["a"], {"metrics": []}, ValueError, "no metric chosen; allowed: ndcg, precision, recall, mrr, map, hit_rate"),
        (["a"], {"gains": "cubic"}, ValueError, "unknown gains 'cubic'; allowed: linear, exponential"),
        (["a"], {"queries": ["q", "nope"]}, EvaluationError, "1 requested queries have no qrels, e.g. ['nope']"),
        (
            ["a"],
            {"vectors": np.zeros((2, 2))},
            ValueError,
            "vectors given as an array need articles (row i is articles[i])",
        ),
    ],
)
def test_evaluate_rejects_bad_arguments(systems, kwargs, error, message):
    built = [FunctionSystem(name, lambda q, k: []) for name in systems]
    with pytest.raises(error) as info:
        evaluate(built, {"q": {"d": 1}}, progress=False, **kwargs)
    assert str(info.value) == message


def test_evaluate_rejects_non_string_ids_and_empty_qrels():
    with pytest.raises(EvaluationError) as info:
        evaluate([FunctionSystem("bad", lambda q, k: [1, 2])], {"q": {"d": 1}}, progress=False)
    assert str(info.value) == "system 'bad' returned a non-string id 1 for query 'q'"

    class Stringy:
        name = "stringy"

        def recommend(self, query_id, k):
            return "d"

    with pytest.raises(EvaluationError) as info:
        evaluate([Stringy()], {"q": {"d": 1}}, progress=False)
    assert str(info.value) == "system 'stringy' returned str for query 'q', expected a list of ids"
    with pytest.raises(TypeError) as info:
        FunctionSystem("bad", lambda q, k: "d").recommend("q", 3)
    assert str(info.value) == "system 'bad' returned str for query 'q', expected an iterable of ids"
    with pytest.raises(EvaluationError) as info:
        evaluate([FunctionSystem("a", lambda q, k: [])], {"q": {}}, progress=False)
    assert str(info.value) == "no query with a relevant item: nothing to evaluate"


def test_evaluate_query_subset_and_curve_cutoffs():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    result = evaluate([FunctionSystem("a", lambda q, k: ["a"])], qrels, queries=["q1"], progress=False)
    assert result.queries == ["q1"]
    assert result.means["a"]["hit_rate@5"] == 1.0
    assert curve_cutoffs((5, 10)) == tuple(range(1, 11))
    assert curve_cutoffs((10, 100)) == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 30, 50, 75, 100)


# ------------------------------------------------------------------------------------------------ real data


def test_tfidf_on_ecbplus_dev():
    base = shared_dataset("ecbplus-dev")  # ../shared next to the repo; skipped with the reason if absent
    with (base / "articles.jsonl").open(encoding="utf-8") as handle:
        articles = [parse_article(json.loads(line), clean_html=False) for line in handle]
    qrels = load_qrels(base / "qrels.tsv")
    result = evaluate(
        [TfidfSystem(articles), RandomSystem(articles, seed=0)],
        qrels,
        cutoffs=(10,),
        metrics=["ndcg", "precision"],
        articles=articles,
        progress=False,
        n_bootstrap=200,
    )
    assert len(result.queries) == 496
    # linear gains (trec_eval); the exponential-gain value is ~0.954
    assert result.means["tfidf"]["ndcg@10"] == pytest.approx(0.964, abs=0.005)
    assert result.means["random"]["ndcg@10"] < 0.1
    assert result.comparisons_for("ndcg@10")[0].significant()


def test_evaluate_counts_unknown_ids_of_queries_left_out_and_keeps_caller_meta():
    articles = corpus()
    qrels = {"rates1": {"rates2": 1}, "ghost": {"rates1": 1}, "storm1": {"storm2": 1, "nowhere": 2}}
    system = FunctionSystem("a", lambda q, k: ["rates2", "storm2"])
    # The caller asks only the queries the index holds; the ghost query must still be reported, not hidden.
    result = evaluate(
        [system],
        qrels,
        articles=articles,
        queries=["rates1", "storm1"],
        progress=False,
        meta={"ground_truth": {"kind": "qrels", "source": "q.tsv"}},
    )
    assert result.queries == ["rates1", "storm1"]
    assert result.meta["unknown_ids"] == {
        "unknown_query_ids": 1,
        "unknown_doc_ids": 1,
        "pairs_with_unknown_doc": 1,
        "examples": ["ghost", "nowhere"],
    }
    assert result.meta["ground_truth"] == {"kind": "qrels", "source": "q.tsv"}
    from recommender.evaluation.runner import _OWN_META_KEYS

    assert set(result.meta) == _OWN_META_KEYS | {"ground_truth"}  # the reserved list is the real one
    with pytest.raises(ValueError) as info:
        evaluate([system], qrels, progress=False, meta={"seed": 7, "queries": 1})
    assert str(info.value) == "meta key(s) queries, seed are set by evaluate() itself"


def test_comparison_table_shows_difference_and_p_values():
    articles = corpus()
    qrels = qrels_from_labels(articles, "story")
    good, bad = TfidfSystem(articles), RandomSystem(articles, seed=0)
    result = evaluate([good, bad], qrels, cutoffs=(3,), articles=articles, progress=False, n_bootstrap=50)
    c = result.comparisons_for("ndcg@3")[0]
    lines = format_comparisons(result).splitlines()
    assert lines[0] == f"ndcg@3 against tfidf (mean {c.baseline_mean:.4f}), paired over {len(articles)} queries"
    assert lines[1].split() == ["system", "mean", "difference", "t-test", "p", "Wilcoxon", "p"]
    assert lines[3].split()[:3] == ["random", f"{c.system_mean:.4f}", f"{c.mean_difference:+.4f}"]
    assert len(lines) == 4
    assert format_comparisons(evaluate([good], qrels, cutoffs=(3,), progress=False)) == ""  # nothing to compare
