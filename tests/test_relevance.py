"""Calibrated relevance and the floor (issue 13): the model file, fitting it, and what a box does with it; through
the engine, the CLI and the HTTP API on the real demo index and model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recommender import ConfigurationError, Filters, parse_article
from recommender.calibration import fit_relevance, labelled_pairs, story_groups
from recommender.cli import app as cli
from recommender.engine import Recommender
from recommender.evaluation.labels import qrels_from_labels
from recommender.evaluation.systems import indexed_articles
from recommender.ranking import RankingConfig
from recommender.relevance import FEATURES, RelevanceModel, default_relevance_model

runner = CliRunner()


def _model_dict(**changes):
    data = default_relevance_model().to_dict()
    data.update(changes)
    return data


# -- the model file ---------------------------------------------------------------------------------
def test_bundled_model_round_trips_and_scores_monotonically(tmp_path: Path) -> None:
    model = default_relevance_model()
    assert model.features == FEATURES and model.meta["training"]["cross_validated"]["ece"] < 0.02
    again = RelevanceModel.load(model.save(tmp_path / "m.json"))
    X = np.array([[c, c, 3.0 * c, 4.0, 4.0] for c in np.linspace(0.0, 1.0, 21)])
    assert np.array_equal(again.predict(X), model.predict(X))
    p = model.predict(X)
    assert ((0 <= p) & (p <= 1)).all() and (np.diff(p) >= 0).all() and p[0] < 0.05 and p[-1] > 0.9


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "pickle"}, "not a relevance model (format must be 'related-articles/relevance-model')"),
        ({"version": 2}, "unsupported version 2 (this release reads version 1)"),
        ({"features": ["semantic"]}, f"features must be {list(FEATURES)}, got ['semantic']"),
        ({"scaler": {"mean": [0, 0], "scale": [1, 1]}}, "expected 5 numbers, got [0, 0]"),
        ({"scaler": {"mean": [0] * 5, "scale": [1, 1, 0, 1, 1]}}, "scaler.scale must be positive"),
        ({"logistic": {"coef": [1] * 5, "intercept": float("nan")}}, "numbers must be finite"),
        ({"logistic": {"coef": [1] * 5}}, "missing or malformed field 'intercept'"),
        ({"calibration": {"method": "beta"}}, "calibration.method must be isotonic or sigmoid, got 'beta'"),
        (
            {"calibration": {"method": "isotonic", "x": [0, 1], "y": [0.9, 0.1]}},
            "calibration.x and calibration.y must be non-decreasing",
        ),
        ({"calibration": {"method": "isotonic", "x": [0, 1], "y": [0.0, 1.5]}}, "calibration.y must lie in [0, 1]"),
        (
            {"calibration": {"method": "isotonic", "x": [0], "y": [0.5]}},
            "calibration.x and calibration.y must be lists of equal length (at least 2)",
        ),
    ],
)
def test_a_damaged_model_file_is_one_line_naming_the_field(tmp_path: Path, changes: dict, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_model_dict(**changes)))
    with pytest.raises(ConfigurationError) as err:
        RelevanceModel.load(path)
    assert str(err.value) == f"{path}: {message}"


def test_unreadable_model_files(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^.*missing\.json: cannot read relevance model: No such file or directory$"
    ):
        RelevanceModel.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"bad\.json: relevance model is not valid JSON: "):
        RelevanceModel.load(tmp_path / "bad.json")


# -- fitting ----------------------------------------------------------------------------------------
def test_story_groups_are_connected_components() -> None:
    groups = story_groups({"a": {"b": 2}, "b": {"c": 1}, "d": {"e": 0}, "e": {}})
    assert groups == {"a": "a", "b": "a", "c": "a", "d": "d", "e": "e"}


def test_fitting_on_the_demo_stories(demo_recommender: Recommender, tmp_path: Path) -> None:
    corpus = indexed_articles(demo_recommender)
    judgments = qrels_from_labels(corpus, "story_id")
    pairs = labelled_pairs(demo_recommender, judgments)
    assert pairs.queries == len(judgments) and pairs.X.shape[1] == len(FEATURES)
    assert 0.02 < pairs.y.mean() < 0.2  # every candidate of every query: mostly other stories
    model, report = fit_relevance(pairs, method="sigmoid", folds=4, meta={"embedding_model": "x"})
    assert report["folds"] == 4 and report["pairs"] == len(pairs.y)
    assert report["cross_validated"]["auc"] > 0.95 and report["cross_validated"]["ece"] < 0.05
    assert model.calibration["method"] == "sigmoid" and model.meta["training"] == report
    p = model.predict(pairs.X)
    assert p[pairs.y].mean() > 0.5 > p[~pairs.y].mean()


def test_fitting_refuses_what_it_cannot_calibrate(demo_recommender: Recommender) -> None:
    corpus = indexed_articles(demo_recommender)
    judgments = qrels_from_labels(corpus, "story_id")
    one_story = {q: g for q, g in judgments.items() if q in judgments["demo-006"] or q == "demo-006"}
    with pytest.raises(ConfigurationError, match="^calibration needs judged queries from at least 2 stories, got 1$"):
        fit_relevance(labelled_pairs(demo_recommender, one_story))
    nothing = labelled_pairs(demo_recommender, {"demo-006": {}})
    with pytest.raises(
        ConfigurationError, match=r"^calibration needs related and unrelated pairs: got 0 related of \d+ "
    ):
        fit_relevance(nothing)
    with pytest.raises(ConfigurationError, match="^calibration method must be isotonic or sigmoid, got 'beta'$"):
        fit_relevance(labelled_pairs(demo_recommender, judgments), method="beta")


def test_cli_calibrate_writes_a_model_the_service_and_cli_use(demo_index: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "site-model.json"
    result = runner.invoke(
        cli,
        [
            "calibrate",
            "--index-dir",
            str(demo_index),
            "--label-field",
            "story_id",
            "--out",
            str(out),
            "--method",
            "sigmoid",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "from 140 queries in" in result.stdout and "5-fold grouped CV: ECE " in result.stdout
    assert result.stdout.strip().endswith(f"wrote {out}; serve it with RECOMMENDER_RELEVANCE_MODEL={out}")
    model = RelevanceModel.load(out)
    assert model.meta["min_grade"] == 1.0 and model.meta["ground_truth"]["kind"] == "label_field"
    monkeypatch.setenv("RECOMMENDER_RELEVANCE_MODEL", str(out))
    items = json.loads(runner.invoke(cli, ["related", "demo-006", "--index-dir", str(demo_index), "--json"]).stdout)[
        "items"
    ]
    scored = Recommender.open(demo_index, relevance=out).related("demo-006", 6)
    assert [i["relevance"] for i in items] == [round(i.relevance, 4) for i in scored]


def test_cli_calibrate_errors(demo_index: Path, tmp_path: Path) -> None:
    qrels = tmp_path / "q.tsv"
    qrels.write_text("query_id\tdoc_id\tgrade\nnope\talso-nope\t1\n")
    result = runner.invoke(
        cli, ["calibrate", "--index-dir", str(demo_index), "--qrels", str(qrels), "--out", str(tmp_path / "m.json")]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no judged article is in the index (do the judgments name this index's ids?)"
    assert not (tmp_path / "m.json").exists()


# -- the floor in a box ------------------------------------------------------------------------------
def test_the_floor_shortens_the_box_and_counts_what_it_left_out(demo_index: Path, embedder) -> None:
    floored = Recommender.open(demo_index, embedder=embedder)
    unfloored = Recommender.open(demo_index, embedder=embedder, config=RankingConfig(min_relevance=0.0))
    box = floored.related("demo-006", 20)
    assert len(box) < 20 and box.below_floor == 20 - len(box)
    assert all(item.relevance >= 0.5 for item in box)
    full = unfloored.related("demo-006", 20)
    assert len(full) == 20 and full.below_floor == 0
    assert [i.article.id for i in box] == [i.article.id for i in full][
        : len(box)
    ]  # the floor cuts, it does not reorder
    strict = floored.related("demo-006", 20, min_relevance=0.99)
    assert len(strict) <= len(box) and all(i.relevance >= 0.99 for i in strict)


def test_fill_marks_fallback_items_and_respects_filters(demo_recommender: Recommender) -> None:
    box = demo_recommender.related("demo-006", 10, fill="section_recent")
    related = [i for i in box if not i.fallback]
    fallback = [i for i in box if i.fallback]
    assert len(box) == 10 and related and fallback and box[: len(related)] == related
    assert all(
        i.reasons == [{"type": "fallback", "policy": "section_recent"}] and i.relevance is None for i in fallback
    )
    source_section = demo_recommender.article("demo-006").section
    assert all(i.article.section == source_section for i in fallback)
    dates = [i.article.published_at for i in fallback]
    assert dates == sorted(dates, reverse=True)
    filtered = demo_recommender.related("demo-006", 10, fill="recent", filters=Filters(sections=("science",)))
    assert all(i.article.section == "science" for i in filtered)


def test_without_a_relevance_model_nothing_is_floored(demo_index: Path, embedder) -> None:
    bare = Recommender.open(demo_index, embedder=embedder, relevance=None)
    box = bare.related("demo-006", 20)
    assert len(box) == 20 and all(i.relevance is None for i in box)


def test_closed_feedback_gate_ranks_as_without_feedback(demo_index: Path, embedder) -> None:
    """Feedback (PRF) only runs when enough candidates are confidently related: a gate nobody passes must give
    exactly the ranking with feedback switched off."""
    closed = Recommender.open(
        demo_index, embedder=embedder, config=RankingConfig(min_relevance=0.0, feedback_min_related=10_000)
    )
    off = Recommender.open(demo_index, embedder=embedder, config=RankingConfig(min_relevance=0.0, prf_weight=0.0))
    on = Recommender.open(
        demo_index, embedder=embedder, config=RankingConfig(min_relevance=0.0, feedback_min_related=0)
    )
    ids = [f"demo-{n:03d}" for n in range(1, 141, 7)]
    rank = lambda rec, i: [r.article.id for r in rec.related(i, 10)]  # noqa: E731
    assert all(rank(closed, i) == rank(off, i) for i in ids)
    assert any(rank(on, i) != rank(off, i) for i in ids)  # the gate has something to switch


def test_drafts_and_pins_carry_relevance(demo_recommender: Recommender) -> None:
    draft = parse_article({"id": "draft", "title": "Ceasefire talks in Lisgard collapse again",
                           "body": "Negotiators for Talveria and Orenland left Lisgard without a deal over the Dessk corridor."})  # fmt: skip
    items = demo_recommender.related_to_article(draft, 6)
    assert items and all(i.relevance is not None and i.relevance >= 0.5 for i in items)
    unrelated = parse_article({"id": "recipe", "title": "A slow-cooked bean stew for winter evenings",
                               "body": "Soak the beans overnight, then simmer them with onions, garlic and thyme."})  # fmt: skip
    assert len(demo_recommender.related_to_article(unrelated, 6)) == 0  # nothing in the corpus is about stew


def test_salient_terms_feature_matches_a_row_by_row_count() -> None:
    """The vectorised count against the definition, on random rows with many ties and empty rows."""
    import scipy.sparse as sp

    from recommender.relevance import _salient_shared

    rng = np.random.default_rng(3)
    for _ in range(50):
        m, vocabulary = int(rng.integers(1, 30)), int(rng.integers(5, 60))
        dense = rng.choice([0, 0, 0, 0.25, 0.5, 0.5, 0.75, 1.0], size=(m + 1, vocabulary)).astype(np.float32)
        query, rows = sp.csr_matrix(dense[:1]), sp.csr_matrix(dense[1:])
        n = int(rng.integers(1, 12))

        def heaviest(row: np.ndarray, n: int) -> set[int]:
            return set(sorted(np.flatnonzero(row).tolist(), key=lambda t: (-row[t], t))[:n])

        expected = [len(heaviest(dense[0], n) & heaviest(row, n)) for row in dense[1:]]
        assert _salient_shared(rows, query, n).tolist() == expected
