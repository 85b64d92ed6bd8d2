"""Related articles through the public engine API on the real demo index and model."""

from datetime import datetime, timezone

import pytest

from recommender import ArticleNotFoundError, ConfigurationError, Filters, parse_article
from recommender.engine import Recommender
from recommender.ranking import RankingConfig


def _ids(items):
    return [i.article.id for i in items]


def test_related_is_same_story_and_never_self(demo_recommender, demo_records):
    """Issue 13's demo target: boxes hold the story's follow-ups and (almost) nothing else; the floor leaves a
    box short instead. Measured at the default floor 0.5 when written: 2 of 503 items from another story (one
    symmetric pair: two "flood death toll rises" stories in different countries, relevance 0.62), recall 0.849;
    unfloored: 276 of 840 and 0.956."""
    story = {r["id"]: r["story_id"] for r in demo_records}
    copy_of = {r["id"]: r.get("republished_of") for r in demo_records}
    found = expected = shown = other = 0
    for record in demo_records:
        items = demo_recommender.related(record["id"], 6)
        assert len(items) <= 6
        assert record["id"] not in _ids(items)
        assert all(i.relevance >= 0.5 and not i.fallback for i in items)
        scores = [i.score for i in items]
        assert scores == sorted(scores, reverse=True)
        shown += len(items)
        other += sum(story[i] != record["story_id"] for i in _ids(items))
        same = {r["id"] for r in demo_records if r["story_id"] == record["story_id"] and r["id"] != record["id"]}
        same -= {i for i in same if copy_of.get(i) == record["id"] or copy_of.get(record["id"]) == i}
        found += len(same & set(_ids(items)))
        expected += min(6, len(same))
    assert other / shown <= 0.01
    assert found / expected >= 0.8


def test_republished_copies_never_appear(demo_recommender, demo_records):
    copies = {r["id"]: r["republished_of"] for r in demo_records if r.get("republished_of")}
    assert len(copies) == 6
    for copy_id, original in copies.items():
        assert original not in _ids(demo_recommender.related(copy_id, 10))
        assert copy_id not in _ids(demo_recommender.related(original, 10))
    pairs = set(copies.items())
    for record in demo_records:
        got = set(_ids(demo_recommender.related(record["id"], 10)))
        assert not any(a in got and b in got for a, b in pairs), record["id"]


def test_reasons_are_machine_readable(demo_recommender):
    item = demo_recommender.related("demo-006", 3)[0]
    kinds = [r["type"] for r in item.reasons]
    assert kinds[0] == "shared_terms" and item.reasons[0]["terms"]
    assert "similar_meaning" in kinds and "same_section" in kinds
    d = item.to_dict()
    assert set(d) == {
        "id",
        "title",
        "url",
        "published_at",
        "section",
        "image_url",
        "image_alt",
        "score",
        "relevance",
        "fallback",
        "reasons",
    }


def _expected(records, source_id, keep, k):
    """How many items a filtered list must hold: every eligible article (not the source, not a copy of it,
    one per pair of copies) up to k."""
    copy_of = {r["id"]: r.get("republished_of") for r in records}
    story = lambda i: copy_of.get(i) or i  # noqa: E731 - a copy and its original are one story
    stories = {story(r["id"]) for r in records if keep(r) and story(r["id"]) != story(source_id)}
    return min(k, len(stories))


@pytest.fixture(params=["exhaustive", "widening"])
def filtered_recommender(request, unfloored_recommender, monkeypatch):
    """Both ways a filtered request finds its pool: scoring every eligible article, or widening a search (without
    the relevance floor, so a box holds every eligible article up to k)."""
    if request.param == "widening":
        monkeypatch.setattr("recommender.engine._EXHAUSTIVE_LIMIT", 0)
    return unfloored_recommender


def test_filters_each(filtered_recommender, demo_records):
    rec = filtered_recommender
    by_id = {r["id"]: r for r in demo_records}
    when = lambda r: datetime.fromisoformat(r["published_at"].replace("Z", "+00:00"))  # noqa: E731

    def check(items, keep, k):
        assert len(items) == _expected(demo_records, "demo-006", keep, k)
        assert all(keep(by_id[i.article.id]) for i in items) and "demo-006" not in _ids(items)

    check(rec.related("demo-006", 6, filters=Filters(sections=("sport",))), lambda r: r["section"] == "sport", 6)
    check(
        rec.related("demo-006", 6, filters=Filters(exclude_sections=("World",))), lambda r: r["section"] != "world", 6
    )
    tagged = rec.related("demo-006", 6, filters=Filters(tags=("ceasefire",)))
    check(tagged, lambda r: "ceasefire" in r["tags"], 6)
    assert len(tagged) == 4  # 6 tagged articles, minus the source and its re-published copy
    first = _ids(rec.related("demo-006", 3))
    excluded = rec.related("demo-006", 3, filters=Filters(exclude_ids=frozenset(first)))
    assert not set(first) & set(_ids(excluded)) and len(excluded) == 3
    since = datetime(2026, 9, 1, tzinfo=timezone.utc)
    check(rec.related("demo-006", 6, filters=Filters(since=since)), lambda r: when(r) >= since, 6)
    until = datetime(2026, 8, 10, tzinfo=timezone.utc)
    check(rec.related("demo-006", 6, filters=Filters(until=until)), lambda r: when(r) <= until, 6)
    check(rec.related("demo-006", 6, filters=Filters(sections=("sport",), since=since)),
          lambda r: r["section"] == "sport" and when(r) >= since, 6)  # fmt: skip
    assert len(rec.related("demo-006", 6, filters=Filters(language="en"))) == 6
    assert rec.related("demo-006", 6, filters=Filters(language="fr")) == []


def test_language_filter_with_a_second_language(demo_index, embedder):
    rec = Recommender.open(
        demo_index, embedder=embedder, config=RankingConfig(min_relevance=0.0)
    )  # mechanics: no floor
    for i, title in enumerate(["Sommet de Lisgard : pas de cessez-le-feu", "Les pourparlers de Lisgard reprendront"]):
        rec.upsert(parse_article({"id": f"fr-{i}", "title": title, "body": "Les dirigeants ont quitté Lisgard sans accord.",
                                  "language": "fr", "section": "world"}))  # fmt: skip
    french = rec.related("demo-006", 6, filters=Filters(language="FR"))
    assert sorted(_ids(french)) == ["fr-0", "fr-1"]  # every eligible French article, no more
    assert _ids(rec.related("fr-0", 6, filters=Filters(language="fr"))) == ["fr-1"]
    assert not {"fr-0", "fr-1"} & set(_ids(rec.related("demo-006", 6, filters=Filters(language="en"))))


def test_k_larger_than_the_eligible_pool(filtered_recommender, demo_records):
    demo_recommender = filtered_recommender
    royals = [r for r in demo_records if r["section"] == "royals"]
    items = demo_recommender.related("demo-006", 50, filters=Filters(sections=("royals",)))
    copies = sum(1 for r in royals if r.get("republished_of"))
    # Every eligible royals article is returned except near-duplicates of each other.
    assert len(items) == len(royals) - copies
    assert len(demo_recommender.related("demo-006", 50)) == 50


def test_window_and_freshness(demo_recommender):
    src = demo_recommender.article("demo-006").published_at
    windowed = demo_recommender.related("demo-006", 6, window_days=3)
    assert windowed and all(abs((i.article.published_at - src).days) <= 3 for i in windowed)
    fresh = demo_recommender.related("demo-006", 6, freshness_half_life_days=1.0)
    plain = demo_recommender.related("demo-006", 6)
    gap = lambda items: sum(abs((i.article.published_at - src).total_seconds()) for i in items)  # noqa: E731
    assert gap(fresh) <= gap(plain)


def test_diversity_changes_the_list(unfloored_recommender):
    plain = _ids(unfloored_recommender.related("demo-060", 6))
    varied = unfloored_recommender.related("demo-060", 6, diversity=0.9)
    assert len(varied) == 6 and _ids(varied) != plain


def test_unknown_article_and_bad_overrides(demo_recommender):
    with pytest.raises(ArticleNotFoundError, match="article not found: 'nope'"):
        demo_recommender.related("nope")
    with pytest.raises(ConfigurationError, match="unknown ranking option\\(s\\): bogus"):
        demo_recommender.related("demo-006", bogus=1)
    with pytest.raises(ConfigurationError, match="^diversity: Input should be less than or equal to 1$"):
        demo_recommender.related("demo-006", diversity=2)


def test_draft_text(demo_recommender):
    draft = parse_article(
        {
            "id": "draft",
            "title": "Ceasefire talks in Lisgard collapse again",
            "body": "Negotiators for Talveria and Orenland left Lisgard without a deal over the Dessk corridor.",
        }
    )
    items = demo_recommender.related_to_article(draft, 5)
    assert len(items) == 5 and items[0].article.extra["story_id"] == "ceasefire-summit"


def test_live_upsert_and_delete(demo_index, embedder):
    rec = Recommender.open(demo_index, embedder=embedder)
    new = parse_article(
        {
            "id": "live/1 x",
            "title": "Lisgard ceasefire summit to resume next week",
            "body": "Mediators said Talveria and Orenland will return to Lisgard to discuss the Dessk corridor.",
            "section": "world",
            "published_at": "2026-08-20T10:00:00Z",
        }
    )
    assert rec.upsert(new) is True
    assert "live/1 x" in rec
    own = rec.related("live/1 x", 5)
    assert own and own[0].article.extra.get("story_id") == "ceasefire-summit"
    assert "live/1 x" in _ids(rec.related("demo-006", 6))
    assert rec.upsert(new) is False  # replace
    assert _ids(rec.related("demo-006", 10)).count("live/1 x") == 1
    assert rec.delete("live/1 x") is True and "live/1 x" not in rec
    assert "live/1 x" not in _ids(rec.related("demo-006", 10))
    assert rec.delete("demo-003") is True
    assert "demo-003" not in _ids(rec.related("demo-006", 50))
    assert rec.delete("demo-003") is False


def test_operations_needing_a_model_say_so(demo_index):
    rec = Recommender.open(demo_index)
    assert rec.related("demo-006", 2)  # by-id needs no model
    with pytest.raises(ConfigurationError, match="this operation embeds text and needs a model"):
        rec.upsert(parse_article({"id": "x", "title": "t"}))


def test_lexical_rows_of_indexed_and_live_articles_in_any_order(demo_index, embedder):
    """Candidates mix indexed and live articles: their TF-IDF rows come back in the order asked for."""
    import numpy as np

    rec = Recommender.open(demo_index, embedder=embedder)
    for i, word in enumerate(["resume", "stall", "collapse"]):
        rec.upsert(
            parse_article({"id": f"live-{i}", "title": f"Lisgard ceasefire talks {word}", "body": f"Talks {word}."})
        )
    catalog = rec.catalog
    live = [catalog.position(f"live-{i}") for i in range(3)]
    positions = np.array([live[2], 5, live[0], 0, 17, live[1], 5])
    rows = catalog.lexical_rows(positions).toarray()
    one_by_one = np.vstack([catalog.lexical_rows(np.array([p])).toarray() for p in positions])
    assert np.array_equal(rows, one_by_one) and rows[0].any() and not np.array_equal(rows[0], rows[2])


def test_many_live_articles_are_retrieved_like_indexed_ones(demo_index, embedder):
    """Beyond ``candidates`` live articles, a request takes the top of them by each retriever, not all: the
    follow-up written live is found among a day's worth of unrelated live writes, and the pool stays bounded."""
    rec = Recommender.open(demo_index, embedder=embedder, config=RankingConfig(candidates=5))
    topics = ["bean stew recipe", "phone launch event", "council budget vote", "transfer window deal", "mars rover dust",
              "marathon route change", "museum reopening date", "rail timetable update", "bakery prize winner",
              "chess final result", "garden show opens", "bridge repair delay"]  # fmt: skip
    rec.upsert_many(
        [
            parse_article({"id": f"other-{i}", "title": t.capitalize(), "body": f"Local news: {t}."})
            for i, t in enumerate(topics)
        ]
    )
    rec.upsert(parse_article({"id": "follow-up", "title": "Lisgard ceasefire talks to resume after summit failure",
                              "body": "Talveria and Orenland agreed to return to Lisgard for new ceasefire talks over Dessk."}))  # fmt: skip
    source, query_lex, candidates = rec.first_round("demo-006")
    live = {rec.catalog.articles.ids[p] for p in candidates.positions if p >= rec.catalog.base_count}
    assert "follow-up" in live and len(live) <= 10
    assert "follow-up" in [i.article.id for i in rec.related("demo-006", 6)]
