"""Bucketing visitors into variants: stable, proportional, and who moves when shares change."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recommender.cli import app
from recommender.events.variants import Experiment, bucket, minimal_moved_share, moved_share
from recommender.settings import Settings

VISITORS = [f"visitor-{n}" for n in range(20_000)]


def _assign(shares: dict[str, float], salt: str = "s1", n: int = len(VISITORS)) -> list[str]:
    experiment = Experiment.from_shares(shares, salt)
    return [experiment.assign(v) for v in VISITORS[:n]]


def test_assignment_is_a_pure_function_of_salt_and_visitor() -> None:
    a = Experiment.from_shares({"control": 0.5, "b": 0.5}, "exp-1")
    b = Experiment.from_shares({"control": 0.5, "b": 0.5}, "exp-1")
    assert [a.assign(v) for v in VISITORS[:500]] == [b.assign(v) for v in VISITORS[:500]]
    # A known answer: the hash is part of the contract (changing it would reshuffle every running experiment).
    assert bucket("related-v1", "visitor-1") == int.from_bytes(
        __import__("hashlib").blake2b(b"related-v1\x00visitor-1", digest_size=8).digest(), "big"
    )
    assert a.assign(None) == a.assign("") == "control"  # no visitor: the default (first) variant
    other_salt = Experiment.from_shares({"control": 0.5, "b": 0.5}, "exp-2")
    changed = sum(a.assign(v) != other_salt.assign(v) for v in VISITORS)
    assert 0.45 < changed / len(VISITORS) < 0.55  # a new salt is a new, independent shuffle


def test_shares_are_respected() -> None:
    assigned = _assign({"control": 0.7, "b": 0.2, "c": 0.1})
    for name, share in (("control", 0.7), ("b", 0.2), ("c", 0.1)):
        observed = assigned.count(name) / len(assigned)
        sigma = (share * (1 - share) / len(assigned)) ** 0.5
        assert abs(observed - share) < 4 * sigma, (name, observed)
    assert set(_assign({"control": 1.0})) == {"control"}
    assert "off" not in _assign({"control": 0.5, "off": 0.0, "b": 0.5})  # share 0: nobody


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 100), st.integers(0, 100))
def test_two_variants_only_the_visitors_between_the_boundaries_move(old: int, new: int) -> None:
    """Any ramp of a two-variant experiment moves exactly |change| of the visitors, all from the variant that shrank
    to the one that grew: nobody else changes variant."""
    before = {"control": old / 100, "b": 1 - old / 100}
    after = {"control": new / 100, "b": 1 - new / 100}
    assert moved_share(before, after) == pytest.approx(abs(new - old) / 100, abs=1e-12)
    assert moved_share(before, after) == pytest.approx(minimal_moved_share(before, after), abs=1e-12)
    a, b = _assign(before, n=3000), _assign(after, n=3000)
    movers = [(x, y) for x, y in zip(a, b) if x != y]
    grew = "control" if new > old else "b"
    assert all(y == grew for _, y in movers)


def test_neighbour_trades_are_minimal_and_other_trades_are_not() -> None:
    thirds = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
    # b gives 1/6 to c (neighbours): only those visitors move
    neighbours = {"a": 1 / 3, "b": 1 / 6, "c": 1 / 2}
    assert (
        moved_share(thirds, neighbours)
        == pytest.approx(minimal_moved_share(thirds, neighbours))
        == pytest.approx(1 / 6)
    )
    before, after = _assign(thirds), _assign(neighbours)
    assert {(x, y) for x, y in zip(before, after) if x != y} == {("b", "c")}
    # a new variant added last, taking its share from the one before it
    added = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 6, "d": 1 / 6}
    assert moved_share(thirds, added) == pytest.approx(1 / 6) == pytest.approx(minimal_moved_share(thirds, added))
    # c grows to 1/2 taking 1/12 from a (not a neighbour) and 1/12 from b: both boundaries shift, and 1/12 of the
    # visitors move from a to b although b shrank (documented in recommender/events/variants.py)
    apart = {"a": 0.25, "b": 0.25, "c": 0.5}
    assert minimal_moved_share(thirds, apart) == pytest.approx(1 / 6)
    assert moved_share(thirds, apart) == pytest.approx(1 / 4)
    moves = {(x, y) for x, y in zip(_assign(thirds), _assign(apart)) if x != y}
    assert moves == {("a", "b"), ("b", "c")}


def test_moved_share_matches_the_visitors_who_move() -> None:
    before = {"a": 0.1, "b": 0.6, "c": 0.3}
    after = {"a": 0.4, "b": 0.2, "c": 0.4}
    moved = sum(x != y for x, y in zip(_assign(before), _assign(after))) / len(VISITORS)
    expected = moved_share(before, after)
    assert expected == pytest.approx(float(Fraction(3, 10) + Fraction(1, 10)))  # [0.1, 0.4) a; [0.6, 0.7) b -> c
    assert abs(moved - expected) < 4 * (expected * (1 - expected) / len(VISITORS)) ** 0.5


@pytest.mark.parametrize(
    "value, message",
    [
        (
            '{"control": {"share": 0.5}, "b": {"share": 0.4}}',
            "RECOMMENDER_VARIANTS: shares must add up to 1, got 0.9 (control=0.5, b=0.4)",
        ),
        (
            '{"control": {"share": 1.5}}',
            "RECOMMENDER_VARIANTS__CONTROL__SHARE=1.5: Input should be less than or equal to 1",
        ),
        (
            '{"no space": {"share": 1}}',
            "RECOMMENDER_VARIANTS: variant name 'no space' must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        ),
        (
            '{"control": {"share": 1, "weight": 2}}',
            "RECOMMENDER_VARIANTS__CONTROL__WEIGHT=2: Extra inputs are not permitted",
        ),
        (
            '{"control": {"share": 0.5}, "b": {"share": 0.5, "config": "missing.json"}}',
            "RECOMMENDER_VARIANTS: variant 'b': missing.json: cannot read ranking configuration: No such file or directory",
        ),
    ],
)
def test_bad_variant_settings_are_one_line_naming_the_variable(value: str, message: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["related", "demo-001", "--index-dir", str(tmp_path)], env={"RECOMMENDER_VARIANTS": value}
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {message}"


def test_variants_from_settings_carry_their_ranking(tmp_path) -> None:
    config = tmp_path / "diverse.json"
    config.write_text(json.dumps({"diversity": 0.6}))
    settings = Settings(variants={"control": {"share": 0.9}, "diverse": {"share": 0.1, "config": str(config)}})
    experiment = Experiment.from_settings(settings)
    assert experiment.names == ("control", "diverse") and experiment.default == "control"
    assert experiment.overrides("control") == {}
    assert experiment.overrides("diverse")["diversity"] == 0.6
    with pytest.raises(ValueError, match="unknown variant 'x'; configured: control, diverse"):
        experiment.overrides("x")
    assert Experiment.from_settings(Settings()).names == ("control",)
