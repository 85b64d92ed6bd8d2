"""Ranking logic on hand-made candidates whose right answer is known before the test runs."""

import numpy as np
import pytest

from recommender import ConfigurationError, RankingConfig
from recommender.dedup import jaccard_estimate, minhash_signatures
from recommender.ranking import Candidates, Source, rank

DAY = 86400.0


def _cands(sem, lex, texts=None, published=None, vectors=None, sections=None):
    n = len(sem)
    texts = texts or [f"unique text number {i} " * 3 + f"token{i} alpha{i} beta{i}" for i in range(n)]
    vecs = vectors if vectors is not None else np.eye(n, 8, dtype=np.float32)
    return Candidates(
        positions=np.arange(n),
        semantic=np.asarray(sem, np.float32),
        lexical=np.asarray(lex, np.float32),
        vectors=vecs,
        signatures=minhash_signatures(texts),
        published=np.asarray(published if published is not None else [np.nan] * n, dtype=np.float64),
        sections=np.array(sections or [None] * n, dtype=object),
        tags=[frozenset()] * n,
    )


def _source(text="the source article text", published=float("nan")):
    return Source(
        vector=np.zeros(8, np.float32),
        signature=minhash_signatures([text])[0],
        published=published,
        section=None,
        tags=frozenset(),
    )


def test_weighted_fusion_orders_by_mix():
    c = _cands([0.9, 0.1, 0.6], [0.0, 0.9, 0.6])
    order = lambda w: [i.position for i in rank(_source(), c, RankingConfig(semantic_weight=w), 3)]  # noqa: E731
    assert order(1.0) == [0, 2, 1]
    assert order(0.0) == [1, 2, 0]
    assert order(0.5) == [2, 1, 0]  # 0.6 > 0.5 > 0.45


def test_rrf_fusion():
    c = _cands([0.9, 0.8, 0.05, 0.1], [0.05, 0.8, 0.9, 0.1])
    items = rank(_source(), c, RankingConfig(fusion="rrf", semantic_weight=0.5), 4)
    # second in both lists: 2/62 = 0.03226 beats first-and-last: 1/61 + 1/64 = 0.03202
    assert items[0].position == 1
    assert items[0].score == pytest.approx(0.5 / 62 + 0.5 / 62)


def test_near_duplicates_of_source_and_of_each_other_are_dropped():
    story = "the summit in lisgard ended without a ceasefire agreement after two days of talks on the corridor"
    texts = [
        story + " reporters said",
        "updated: " + story + " reporters said",
        "a completely different story about floods in the teyna river valley",
        story,
    ]
    c = _cands([0.9, 0.8, 0.3, 0.95], [0.9, 0.8, 0.3, 0.95], texts=texts)
    src = _source("elsewhere: an unrelated source about tennis finals in harbour city and a long rally")
    assert [i.position for i in rank(src, c, RankingConfig(), 4)] == [3, 2]  # 0 and 1 are copies of 3
    src_dup = _source(story)
    assert [i.position for i in rank(src_dup, c, RankingConfig(), 4)] == [2]


def test_jaccard_estimate_tracks_real_overlap():
    a = " ".join(f"w{i}" for i in range(200))
    b = " ".join(f"w{i}" for i in range(100, 300))
    sig = minhash_signatures([a, b, a])
    assert jaccard_estimate(sig[0], sig[2])[0] == 1.0
    assert abs(jaccard_estimate(sig[0], sig[1])[0] - 98 / 298) < 0.15


def test_freshness_decay_prefers_close_dates():
    c = _cands([0.8, 0.8], [0.8, 0.8], published=[30 * DAY, 1 * DAY])
    src = _source(published=0.0)
    assert [i.position for i in rank(src, c, RankingConfig(freshness_half_life_days=7), 2)] == [1, 0]
    items = rank(src, c, RankingConfig(freshness_half_life_days=7), 2)
    assert items[0].score == pytest.approx(0.8 * 0.5 ** (1 / 7), rel=1e-5)


def test_undated_candidates_never_gain_from_freshness():
    # 0 is undated; 1 is a week away, 2 a year away. With freshness on, the undated one decays like the oldest.
    c = _cands([0.9, 0.8, 0.85], [0.9, 0.8, 0.85], published=[np.nan, 7 * DAY, 365 * DAY])
    items = rank(_source(published=0.0), c, RankingConfig(freshness_half_life_days=7), 3)
    assert [i.position for i in items] == [1, 0, 2]
    assert items[1].score == pytest.approx(0.9 * 0.5 ** (365 / 7), rel=1e-5)
    # No dated candidate at all (ecbplus-dev has no dates): freshness changes nothing.
    undated = _cands([0.9, 0.8], [0.9, 0.8])
    assert [
        i.score for i in rank(_source(published=0.0), undated, RankingConfig(freshness_half_life_days=7), 2)
    ] == pytest.approx([0.9, 0.8])


@pytest.mark.parametrize("diversity", [0.0, 0.3, 0.9])
def test_many_copies_of_one_story_never_make_the_list_short(diversity):
    """60 re-publications of one story outrank 5 distinct stories: the list still holds k distinct stories."""
    story = "the summit in lisgard ended without a ceasefire agreement after two days of talks on the corridor"
    texts = [f"update {i}: {story} reporters said" for i in range(60)]
    texts += [f"distinct story {j} about floods harbours elections courts and comets number {j} " * 2 for j in range(5)]
    rng = np.random.default_rng(0)
    v = rng.normal(size=(65, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rel = [0.9 - 0.001 * i for i in range(60)] + [0.5 - 0.01 * j for j in range(5)]
    c = _cands(rel, rel, texts=texts, vectors=v)
    items = rank(
        _source("an unrelated source about tennis finals in harbour city"), c, RankingConfig(diversity=diversity), 5
    )
    positions = [i.position for i in items]
    assert len(positions) == 5 and len([p for p in positions if p < 60]) == 1  # one copy of the story, 4 others
    assert 0 in positions or diversity > 0  # without diversity the best copy leads


def test_mmr_diversity_breaks_up_one_angle():
    v = np.array([[1, 0, 0], [0.99, 0.14, 0], [0, 1, 0]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    c = _cands([0.9, 0.89, 0.7], [0.9, 0.89, 0.7], vectors=v)
    assert [i.position for i in rank(_source(), c, RankingConfig(diversity=0.0), 2)] == [0, 1]
    assert [i.position for i in rank(_source(), c, RankingConfig(diversity=0.5), 2)] == [0, 2]


def test_config_validation_and_files(tmp_path):
    with pytest.raises(ConfigurationError, match="^fusion: must be one of weighted, rrf, got 'max'$"):
        RankingConfig(fusion="max")
    with pytest.raises(
        ConfigurationError, match="^semantic_weight: Input should be (greater|less) than or equal to [01]$"
    ):
        RankingConfig(semantic_weight=2)
    (tmp_path / "fresh.json").write_text('{"freshness_half_life_days": 3, "diversity": 0.2}')
    cfg = RankingConfig.from_file(tmp_path / "fresh.json")
    assert (cfg.name, cfg.freshness_half_life_days, cfg.diversity) == ("fresh", 3, 0.2)
    (tmp_path / "t.toml").write_text('name = "tomlcfg"\nsemantic_weight = 0.7\n')
    assert RankingConfig.from_file(tmp_path / "t.toml").semantic_weight == 0.7
    (tmp_path / "bad.json").write_text('{"nope": 1}')
    with pytest.raises(ConfigurationError, match="unknown ranking option\\(s\\): nope"):
        RankingConfig.from_file(tmp_path / "bad.json")
    with pytest.raises(ConfigurationError, match="cannot read ranking configuration"):
        RankingConfig.from_file(tmp_path / "missing.json")


def test_feedback_lifts_the_candidate_that_resembles_the_top_ones():
    import scipy.sparse as sp

    # Candidates 0 and 1 are the same event (similar to each other); 2 is a look-alike that scores a bit
    # higher than 1 against the source but resembles nothing else in the list.
    v = np.array([[1, 0, 0], [0.9, 0.436, 0], [0, 0, 1]], dtype=np.float32)
    c = _cands([0.9, 0.5, 0.55], [0.9, 0.5, 0.55], vectors=v)
    c.lexical_rows = sp.csr_matrix(v)
    plain = rank(_source(), c, RankingConfig(prf_docs=0), 3)
    assert [i.position for i in plain] == [0, 2, 1]
    fed = rank(_source(), c, RankingConfig(prf_docs=1, prf_weight=1.0), 3)
    assert [i.position for i in fed] == [0, 1, 2]
    # score = (fused + weight * similarity to the top candidate) / (1 + weight)
    assert fed[1].score == pytest.approx((0.5 + 1.0 * (0.9 * 1 + 0.436 * 0)) / 2, rel=1e-4)


def _signature_pair(agree: int, width: int = 64):
    """Two signatures whose MinHash estimate is exactly ``agree / width``."""
    a = np.arange(width, dtype=np.uint32)
    b = a.copy()
    b[agree:] += 1000
    return a, b


@pytest.mark.parametrize(
    "agree, exact, duplicate", [(46, 0.50, False), (38, 0.80, True), (64, 1.0, True), (10, 0.95, False)]
)
def test_estimates_near_the_threshold_are_decided_by_the_exact_jaccard(agree, exact, duplicate):
    # Estimate 46/64 = 0.72 with a true 0.50: a related story the screen alone would hide. Estimate 38/64 = 0.59
    # with a true 0.80: a copy the screen alone would show. Outside the band (1.0, 0.16) the estimate decides.
    src_sig, cand_sig = _signature_pair(agree)
    source = Source(
        vector=np.zeros(8, np.float32), signature=src_sig, published=float("nan"), section=None, tags=frozenset()
    )
    c = _cands([0.9, 0.5], [0.9, 0.5])
    c.signatures = np.stack([cand_sig, np.full(64, 99999, np.uint32)])
    asked = []

    def jaccard(a, b):
        asked.append((a, b))
        return exact if (a, b) == (-1, 0) else 0.0

    picked = [i.position for i in rank(source, c, RankingConfig(), 2, jaccard=jaccard)]
    assert picked == ([1] if duplicate else [0, 1])
    assert ((-1, 0) in asked) == (abs(agree / 64 - 0.7) < 0.25)
    # Between two candidates the same rule keeps one copy of a story.
    c.signatures = np.stack([src_sig + 5000, cand_sig + 5000])
    pair = [
        i.position for i in rank(source, c, RankingConfig(), 2, jaccard=lambda a, b: exact if (a, b) == (0, 1) else 0.0)
    ]
    assert pair == ([0] if duplicate else [0, 1])
