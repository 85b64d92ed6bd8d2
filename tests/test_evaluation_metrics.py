"""Ranking metrics cross-checked against hand arithmetic; beyond-accuracy metrics on tiny hand-made inputs."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.evaluation.metrics import (
    catalog_coverage,
    duplicate_pair_rate,
    freshness,
    intra_list_diversity,
    latency_percentiles,
    mean_metrics,
    metric_curves,
    metric_key,
    near_duplicate_rate,
    novelty,
    parse_metric_key,
    per_query_ranking_metrics,
    per_query_ranking_metrics_many,
    ranking_metrics,
    self_recommendation_rate,
)

LOG2_3 = math.log2(3)  # 1.5849625007

# q1: graded, three relevant (a=2, b=1, c=1); q2: one relevant (x).
QRELS = {"q1": {"a": 2, "b": 1, "c": 1}, "q2": {"x": 1}}
# q1 ranks a (rel) z b (rel) y w ; q2 ranks y z x (rel at rank 3)
RUN = {"q1": ["a", "z", "b", "y", "w"], "q2": ["y", "z", "x"]}


def test_per_query_values_match_hand_arithmetic():
    got = per_query_ranking_metrics(RUN, QRELS, cutoffs=(1, 3, 5))
    q1, q2 = got["q1"], got["q2"]

    # precision@k = relevant in top k / k
    assert q1["precision@1"] == pytest.approx(1 / 1)  # a
    assert q1["precision@3"] == pytest.approx(2 / 3)  # a, b
    assert q1["precision@5"] == pytest.approx(2 / 5)
    assert q2["precision@1"] == pytest.approx(0.0)
    assert q2["precision@3"] == pytest.approx(1 / 3)
    assert q2["precision@5"] == pytest.approx(1 / 5)

    # recall@k = relevant in top k / all relevant (3 for q1, 1 for q2)
    assert q1["recall@1"] == pytest.approx(1 / 3)
    assert q1["recall@3"] == pytest.approx(2 / 3)
    assert q1["recall@5"] == pytest.approx(2 / 3)  # c never retrieved
    assert q2["recall@1"] == pytest.approx(0.0)
    assert q2["recall@3"] == pytest.approx(1.0)

    # mrr@k = 1 / rank of the first relevant item if rank <= k else 0
    assert q1["mrr@1"] == pytest.approx(1.0)
    assert q2["mrr@1"] == pytest.approx(0.0)  # x is at rank 3
    assert q2["mrr@3"] == pytest.approx(1 / 3)
    assert q2["mrr@5"] == pytest.approx(1 / 3)

    # map@k (trec_eval map_cut) = sum of precision at relevant ranks <= k / number of relevant
    assert q1["map@1"] == pytest.approx(1 / 3)  # (P@1 = 1) / 3
    assert q1["map@3"] == pytest.approx((1 + 2 / 3) / 3)  # P@1 = 1, P@3 = 2/3 -> 5/9
    assert q1["map@5"] == pytest.approx(5 / 9)
    assert q2["map@1"] == pytest.approx(0.0)
    assert q2["map@3"] == pytest.approx((1 / 3) / 1)

    # hit_rate@k = 1 if any relevant item in top k
    assert q1["hit_rate@1"] == 1.0
    assert q2["hit_rate@1"] == 0.0
    assert q2["hit_rate@3"] == 1.0

    # ndcg@k, linear gains (trec_eval): DCG = sum grade / log2(rank + 1)
    # q1: DCG@3 = 2/log2(2) + 0 + 1/log2(4) = 2.5 ; IDCG@3 (ideal 2,1,1) = 2 + 1/log2(3) + 1/2 = 3.1309297536
    idcg_q1 = 2 + 1 / LOG2_3 + 0.5
    assert q1["ndcg@1"] == pytest.approx(2 / 2)  # DCG@1 = 2 = IDCG@1
    assert q1["ndcg@3"] == pytest.approx(2.5 / idcg_q1)  # 0.7984849
    assert q1["ndcg@5"] == pytest.approx(2.5 / idcg_q1)
    # q2: x at rank 3 -> DCG = 1/log2(4) = 0.5, IDCG = 1
    assert q2["ndcg@1"] == pytest.approx(0.0)
    assert q2["ndcg@3"] == pytest.approx(0.5)


def test_means_are_macro_averages_with_expected_keys():
    means = ranking_metrics(RUN, QRELS, cutoffs=(3,))
    assert set(means) == {"ndcg@3", "precision@3", "recall@3", "mrr@3", "map@3", "hit_rate@3"}
    assert means["precision@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert means["recall@3"] == pytest.approx((2 / 3 + 1) / 2)
    assert means["mrr@3"] == pytest.approx((1 + 1 / 3) / 2)
    assert means["ndcg@3"] == pytest.approx((2.5 / (2 + 1 / LOG2_3 + 0.5) + 0.5) / 2)


def test_float_jaccard_grades_keep_ndcg_exact_and_binary_metrics_positive():
    qrels = {"q": {"a": 0.5, "b": 0.25, "c": 1.0}}
    got = per_query_ranking_metrics({"q": ["a", "b", "x"]}, qrels, cutoffs=(3,))["q"]
    # DCG = 0.5/1 + 0.25/log2(3) ; IDCG = 1.0/1 + 0.5/log2(3) + 0.25/log2(4)
    dcg = 0.5 + 0.25 / LOG2_3
    idcg = 1.0 + 0.5 / LOG2_3 + 0.25 / 2
    assert got["ndcg@3"] == pytest.approx(dcg / idcg, abs=1e-3)  # 0.45661; grades scaled x1000 then rounded
    # binary relevance is grade > 0, never int(0.5) == 0
    assert got["precision@3"] == pytest.approx(2 / 3)
    assert got["mrr@3"] == pytest.approx(1.0)
    assert got["recall@3"] == pytest.approx(2 / 3)


def test_exponential_gains():
    qrels = {"q": {"a": 2, "b": 1}}
    run = {"q": ["b", "a"]}
    linear = per_query_ranking_metrics(run, qrels, (2,), ["ndcg"])["q"]["ndcg@2"]
    expo = per_query_ranking_metrics(run, qrels, (2,), ["ndcg"], gains="exponential")["q"]["ndcg@2"]
    # linear: (1 + 2/log2 3) / (2 + 1/log2 3) = 0.859719
    assert linear == pytest.approx((1 + 2 / LOG2_3) / (2 + 1 / LOG2_3))
    # exponential gains 2^g - 1 -> a: 3, b: 1 : (1 + 3/log2 3) / (3 + 1/log2 3) = 0.796709
    assert expo == pytest.approx((1 + 3 / LOG2_3) / (3 + 1 / LOG2_3))


def test_relevant_grade_threshold_for_binary_metrics():
    got = per_query_ranking_metrics(RUN, QRELS, (3,), ["precision", "recall", "ndcg"], relevant_grade=2)
    assert got["q1"]["precision@3"] == pytest.approx(1 / 3)  # only a (grade 2) counts
    assert got["q1"]["recall@3"] == pytest.approx(1.0)  # 1 of 1 grade-2 item
    assert got["q2"]["precision@3"] == 0.0  # no grade-2 item at all
    assert got["q1"]["ndcg@3"] == pytest.approx(2.5 / (2 + 1 / LOG2_3 + 0.5))  # nDCG stays graded


def test_missing_duplicate_and_unjudged_queries():
    run = {"q1": ["a", "a", "b"], "zzz": ["a"]}  # q2 missing, duplicate a, unjudged query zzz
    got = per_query_ranking_metrics(run, QRELS, (2,))
    assert set(got) == {"q1", "q2"}
    assert got["q1"]["precision@2"] == pytest.approx(1.0)  # duplicate counted once: a, b
    assert all(value == 0.0 for value in got["q2"].values())


def test_many_runs_match_single_runs():
    other = {"q1": ["c", "b"], "q2": ["x"]}
    many = per_query_ranking_metrics_many({"one": RUN, "two": other}, QRELS, (1, 2))
    assert many["one"] == per_query_ranking_metrics(RUN, QRELS, (1, 2))
    assert many["two"] == per_query_ranking_metrics(other, QRELS, (1, 2))


def test_metric_curves_and_keys():
    curves = metric_curves(RUN, QRELS, range(1, 4), ["hit_rate"])
    # hit_rate@1: q1 1, q2 0 -> 0.5 ; @2 same ; @3: both -> 1
    assert curves == {"hit_rate": {1: 0.5, 2: 0.5, 3: 1.0}}
    assert metric_key("ndcg", 10) == "ndcg@10"
    assert parse_metric_key("hit_rate@5") == ("hit_rate", 5)
    assert parse_metric_key("latency_p50_ms") == ("latency_p50_ms", None)
    assert mean_metrics({}) == {}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metrics": ["ndcg", "foo"]}, "unknown metric 'foo'; allowed: ndcg, precision, recall, mrr, map, hit_rate"),
        ({"metrics": []}, "no metric chosen; allowed: ndcg, precision, recall, mrr, map, hit_rate"),
        ({"cutoffs": (0, 5)}, "cutoffs must be positive integers, got 0"),
        ({"cutoffs": ()}, "cutoffs must not be empty"),
        ({"gains": "log"}, "unknown gains 'log'; allowed: linear, exponential"),
    ],
)
def test_invalid_choices(kwargs, message):
    with pytest.raises(ValueError) as info:
        per_query_ranking_metrics(RUN, QRELS, **kwargs)
    assert str(info.value) == message


def test_grade_too_large_for_trec_eval():
    with pytest.raises(ValueError) as info:
        per_query_ranking_metrics({"q": ["a"]}, {"q": {"a": 3_000_000.5}}, (1,))
    assert str(info.value) == "grade 3000000.5 is too large for trec_eval's 32-bit relevance (max 2147483)"


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcdefgh"), st.integers(1, 3), min_size=1, max_size=6),
    st.lists(st.sampled_from("abcdefghij"), max_size=8),
)
def test_metrics_bounded_and_ideal_run_is_perfect(grades, ranked):
    qrels = {"q": grades}
    for value in per_query_ranking_metrics({"q": ranked}, qrels, (1, 5))["q"].values():
        assert -1e-9 <= value <= 1 + 1e-9
    ideal = sorted(grades, key=lambda d: -grades[d])
    perfect = per_query_ranking_metrics({"q": ideal}, qrels, (len(ideal),))["q"]
    assert perfect[f"ndcg@{len(ideal)}"] == pytest.approx(1.0)
    assert perfect[f"recall@{len(ideal)}"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- beyond accuracy


def test_catalog_coverage():
    run = {"q1": ["a", "b", "ghost"], "q2": ["b", "c"]}
    # {a, b, c} of 5 catalogue items; "ghost" is not in the catalogue and does not count
    assert catalog_coverage(run, {"a", "b", "c", "d", "e"}) == {"catalog_coverage": 3 / 5}
    assert catalog_coverage(run, ["a", "b", "c", "d", "e"], k=1) == {"catalog_coverage@1": 2 / 5}  # a, b
    assert catalog_coverage(run, []) == {}


def test_intra_list_diversity():
    vectors = {
        "a": np.array([1.0, 0.0]),
        "b": np.array([0.0, 1.0]),
        "c": np.array([1.0, 1.0]),
        "a2": np.array([2.0, 0.0]),
    }
    run = {"q1": ["a", "b", "c"], "q2": ["a", "a2"], "q3": ["a", "nov"]}
    # q1 pairs: (a,b) 1 - 0 = 1 ; (a,c) and (b,c) 1 - 1/sqrt2 = 0.2928932 ; mean = 0.5285955
    # q2: a and a2 point the same way -> 0 ; q3: only one item with a vector -> no pairs, left out
    q1 = (1 + 2 * (1 - 1 / math.sqrt(2))) / 3
    got = intra_list_diversity(run, vectors)
    assert got["intra_list_diversity"] == pytest.approx((q1 + 0.0) / 2)
    assert intra_list_diversity({"q": ["nov"]}, vectors) == {}


def test_novelty():
    popularity = {"a": 8, "b": 4, "c": 4}  # total 16 -> shares 1/2, 1/4, 1/4 -> -log2: 1, 2, 2
    run = {"q1": ["a", "b"], "q2": ["c", "unseen"]}
    # q1 mean (1 + 2)/2 = 1.5 ; q2: c -> 2, unseen scored as popularity 1 -> -log2(1/16) = 4 -> 3 ; mean 2.25
    assert novelty(run, popularity) == {"novelty": pytest.approx(2.25)}
    assert novelty(run, {}) == {}


def test_freshness():
    t0 = datetime(2024, 1, 10, tzinfo=UTC)
    published = {"q": t0, "a": t0 + timedelta(days=1), "b": t0 - timedelta(days=3), "c": None}
    got = freshness({"q": ["a", "b", "c"], "undated": ["a"]}, published, k=3)
    # gaps |+1| and |-3| days; c and the undated source are skipped
    assert got == {"freshness_median_days@3": 2.0, "freshness_mean_days@3": 2.0, "freshness_pairs@3": 2.0}
    assert freshness({"q": ["c"]}, published) == {}


def test_near_duplicate_and_self_recommendation():
    run = {"q": ["q-copy", "x", "q"], "r": ["a"]}
    # 4 recommended items, one near-duplicate (the self item is counted by the self-recommendation rate instead)
    assert near_duplicate_rate(run, lambda s, i: i.startswith(s + "-copy")) == {"near_duplicate_rate": 1 / 4}
    # 1 of 2 lists contains its own source
    assert self_recommendation_rate(run) == {"self_recommendation_rate": 0.5}
    assert self_recommendation_rate(run, k=1) == {"self_recommendation_rate@1": 0.0}


def test_duplicate_pair_rate():
    same = lambda a, b: a.split("~")[0] == b.split("~")[0]  # noqa: E731 - "s~1" and "s~2" are one story
    run = {"q1": ["s~1", "x", "s~2"], "q2": ["a", "b", "c"], "q3": ["s~1", "t", "t~copy"]}
    assert duplicate_pair_rate(run, same) == {"duplicate_pair_rate": 2 / 3}
    assert duplicate_pair_rate(run, same, k=2) == {"duplicate_pair_rate@2": 0.0}  # the pairs sit at 1+3 and 2+3
    assert duplicate_pair_rate({}, same) == {}


def test_exact_shingle_predicate_is_independent_of_minhash(demo_recommender, demo_records):
    """The evaluation measures near-duplicates with exact shingle Jaccard, not the engine's own MinHash estimate."""
    from recommender.evaluation.systems import near_duplicate_predicate

    is_dup = near_duplicate_predicate(demo_recommender)
    copies = [(r["id"], r["republished_of"]) for r in demo_records if r.get("republished_of")]
    assert copies and all(is_dup(a, b) and is_dup(b, a) for a, b in copies)
    assert not is_dup("demo-006", "demo-003")  # same story, written anew: related, not a copy
    assert not is_dup("demo-006", "no-such-id")


def test_latency_percentiles():
    got = latency_percentiles([1, 2, 3, 4, 5])
    # numpy linear interpolation: p95 at position 0.95 * 4 = 3.8 -> 4 + 0.8 = 4.8 ; p99 -> 4.96
    assert got == {
        "latency_p50_ms": 3.0,
        "latency_p95_ms": pytest.approx(4.8),
        "latency_p99_ms": pytest.approx(4.96),
        "latency_mean_ms": 3.0,
    }
    assert latency_percentiles([]) == {}
