"""Online evaluation: the statistics by hand and against SciPy, and on simulated readers with planted effects (a CTR
difference it must find, none where there is none, a sample ratio mismatch it must flag)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from recommender.evaluation.online import delta_method_variance, evaluate_online, holm, srm_check, wilson
from recommender.evaluation.online_report import render_online_html, run_online_evaluation, write_online_report
from recommender.events.files import Columns
from recommender.events.log import EventLog
from recommender.events.read import load_events
from recommender.events.simulate import LocalTransport, ReaderModel, load_stories, simulate
from recommender.serving import LiveIndex
from recommender.settings import Settings
from tests.support.paths import DEMO_CORPUS
from tests.support.server import copy_index


# -- the statistics ---------------------------------------------------------------------------------
def test_wilson_by_hand_and_against_scipy() -> None:
    low, high = wilson(10, 100)
    # p = 0.1, z = 1.96: centre (0.1 + 1.96^2/200) / (1 + 1.96^2/100) = 0.11480, half-width 0.05957
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    for k, n in ((0, 50), (3, 1000), (50, 50), (412, 5000)):
        interval = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert wilson(k, n) == pytest.approx((interval.low, interval.high), abs=1e-9)
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_delta_method_variance() -> None:
    rng = np.random.default_rng(0)
    clicks = rng.binomial(1, 0.2, size=500).astype(float)
    # one impression per visitor: the variance of a mean of independent Bernoullis, p(1-p)/(m-1) with the sample variance
    p = clicks.mean()
    assert delta_method_variance(clicks, np.ones(500)) == pytest.approx(p * (1 - p) / 499)
    # clustered data: agrees with a bootstrap over visitors
    impressions = rng.integers(1, 30, size=2000).astype(float)
    propensity = rng.gamma(2.0, 0.05, size=2000)
    clicks = rng.binomial(impressions.astype(int), np.minimum(propensity, 1)).astype(float)
    picks = rng.integers(0, 2000, size=(3000, 2000))
    boot = (clicks[picks].sum(1) / impressions[picks].sum(1)).var()
    assert delta_method_variance(clicks, impressions) == pytest.approx(boot, rel=0.1)
    naive = (clicks.sum() / impressions.sum()) * (1 - clicks.sum() / impressions.sum()) / impressions.sum()
    assert delta_method_variance(clicks, impressions) > 1.5 * naive  # correlated impressions: the naive test lies


def test_holm() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == [0.2]
    assert holm([0.5, math.nan, 0.01])[:1] == [0.5] and math.isnan(holm([0.5, math.nan, 0.01])[1])


def test_sample_ratio_check() -> None:
    check = srm_check({"control": 5200, "b": 4800}, {"control": 0.5, "b": 0.5})
    assert check.chi2 == pytest.approx(2 * 200**2 / 5000) and check.p_value == pytest.approx(stats.chi2.sf(16, 1))
    assert check.mismatch
    fine = srm_check({"control": 5030, "b": 4970}, {"control": 0.5, "b": 0.5})
    assert not fine.mismatch and fine.p_value > 0.5
    stray = srm_check({"control": 500, "b": 500, "old": 3}, {"control": 0.5, "b": 0.5})
    assert stray.mismatch and stray.unexpected == {"old": 3}
    assert "SAMPLE RATIO MISMATCH" in stray.line()


def _table(rows: list[tuple]) -> object:
    columns = Columns()
    for n, (kind, visitor, variant, position, request) in enumerate(rows):
        record = {"type": kind, "source_id": "s", "item_id": f"i{position}", "position": position,
                  "request_id": request, "variant": variant, "visitor": visitor,
                  "at": f"2026-11-30T10:00:00.{n:03d}Z", "received_at": "2026-11-30T10:00:01.000Z"}  # fmt: skip
        columns.add_line(n, json.dumps(record).encode())
    return columns.table()


def test_visitors_in_two_variants_are_left_out_and_orphan_clicks_counted() -> None:
    rows = [
        ("impression", "a", "control", 1, "r1"), ("impression", "a", "control", 2, "r1"), ("click", "a", "control", 1, "r1"),
        ("impression", "b", "b", 1, "r2"), ("click", "b", "b", 2, "r2"),  # a click on an item never shown
        ("impression", "x", "control", 1, "r1"), ("impression", "x", "b", 1, "r2"),  # x in both: out
    ]  # fmt: skip
    result = evaluate_online(_table(rows), shares={"control": 0.5, "b": 0.5}, n_bootstrap=50)
    assert result.quality["visitors_in_several_variants"] == 1 and result.quality["events_of_those_visitors"] == 2
    assert result.quality["orphan_clicks"] == 1
    control, b = result.stats("control"), result.stats("b")
    assert (control.visitors, control.impressions, control.clicks) == (1, 2, 1)
    assert (b.visitors, b.impressions, b.clicks) == (1, 1, 1)
    assert control.by_position[1][:2] == (1, 1) and control.by_position[2][:2] == (1, 0)


def test_report_files_escape_what_they_show(tmp_path: Path) -> None:
    rows = [("impression", "a", "<script>x</script>", 1, "r1"), ("click", "a", "<script>x</script>", 1, "r1")]
    result = evaluate_online(_table(rows), n_bootstrap=10)
    written = write_online_report(result, tmp_path, {"events_dir": "<b>dir</b>"})
    page = written["html"].read_text()
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page and "<b>dir" not in page
    assert "<script>" not in written["markdown"].read_text()
    assert json.loads(written["results"].read_text())["<script>x</script>"]["clicks"] == 1
    assert "<script>x" not in render_online_html(result, {}, {})


# -- simulated readers -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(demo_index: Path, tmp_path_factory, embedder) -> LiveIndex:
    root = copy_index(demo_index, tmp_path_factory.mktemp("online") / "index")
    # Full boxes (no relevance floor): the tests below were sized for six impressions per view.
    settings = Settings(
        index_dir=root,
        poll_interval=0,
        variants={"control": {"share": 0.5}, "treatment": {"share": 0.5}},
        ranking={"min_relevance": 0.0},
    )
    index = LiveIndex(settings, embedder=embedder)
    index.load()
    return index


def _simulate(live: LiveIndex, folder: Path, *, seed: int, visitors: int = 1500, **model) -> Path:
    ids, stories = load_stories(DEMO_CORPUS)
    transport = LocalTransport(live, EventLog(folder))
    simulate(transport, ids, stories, visitors=visitors, seed=seed, model=ReaderModel(**model))
    return folder


SHARES = {"control": 0.5, "treatment": 0.5}


def test_a_planted_ctr_difference_is_found(live: LiveIndex, tmp_path: Path) -> None:
    folder = _simulate(live, tmp_path / "events", seed=3, click_scale={"treatment": 0.7}, heterogeneity=1.0)
    result, written = run_online_evaluation(folder, tmp_path / "report", shares=SHARES, seed=0)
    [comparison] = result.comparisons
    assert comparison.variant == "treatment" and comparison.baseline == "control"
    assert comparison.significant() and comparison.difference < 0 and comparison.ci_high < 0
    assert -0.45 < comparison.relative < -0.15  # planted: -30% click probability
    # visitors click at very different rates: impressions are correlated, the naive test is overconfident
    assert comparison.p_naive < comparison.p_value
    assert not result.srm.mismatch
    control = result.stats("control")
    ctr = [control.by_position[p][2] for p in sorted(control.by_position)]
    assert ctr[0] > ctr[2] > ctr[5]  # position bias recovered
    for name in ("report.html", "report.md", "results.json", "comparisons.json", "meta.json", "ctr.png",
                 "ctr_by_position.png", "by_position.csv", "daily.csv"):  # fmt: skip
        assert (tmp_path / "report" / name).is_file(), name
    assert json.loads(written["meta"].read_text())["srm"]["mismatch"] is False


def test_no_difference_is_found_where_none_was_planted(live: LiveIndex, tmp_path: Path) -> None:
    folder = _simulate(live, tmp_path / "events", seed=11, heterogeneity=1.0)
    result, _ = run_online_evaluation(folder, tmp_path / "report", shares=SHARES, seed=0)
    [comparison] = result.comparisons
    assert not comparison.significant() and comparison.ci_low < 0 < comparison.ci_high
    assert not result.srm.mismatch


def test_a_planted_sample_ratio_mismatch_is_flagged(live: LiveIndex, tmp_path: Path) -> None:
    folder = _simulate(live, tmp_path / "events", seed=5, drop={"treatment": 0.3})
    table, _ = load_events(folder)
    result = evaluate_online(table, shares=SHARES, n_bootstrap=100)
    assert result.srm is not None and result.srm.mismatch and result.srm.p_value < 1e-3
    assert result.srm.observed["treatment"] < result.srm.observed["control"]
