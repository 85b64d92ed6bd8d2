"""Paired comparisons (hand-checked) and the report files (content, escaping, valid JSON, PNGs)."""

from __future__ import annotations

import csv
import json
import math
import warnings

import pytest
from scipy import stats

from recommender.evaluation import (
    FunctionSystem,
    compare_scores,
    compare_to_baseline,
    evaluate,
    format_table,
    write_report,
)

BASE = {"q1": 0.5, "q2": 0.5, "q3": 0.5, "q4": 0.5}
BETTER = {"q1": 0.6, "q2": 0.7, "q3": 0.5, "q4": 0.4}


def test_compare_scores_by_hand():
    c = compare_scores(BASE, BETTER, metric="ndcg@10", baseline="a", system="b", n_bootstrap=500, seed=1)
    # differences b - a: +0.1, +0.2, 0, -0.1 -> mean 0.05 ; wins 2, ties 1, losses 1
    assert (c.n, c.wins, c.ties, c.losses) == (4, 2, 1, 1)
    assert c.mean_difference == pytest.approx(0.05)
    assert (c.baseline_mean, c.system_mean) == (pytest.approx(0.5), pytest.approx(0.55))
    # sd (ddof 1): deviations .05 .15 -.05 -.15 -> squares sum 0.05 -> /3 -> sqrt = 0.1290994
    sd = math.sqrt(0.05 / 3)
    assert c.cohens_d == pytest.approx(0.05 / sd)  # 0.3873
    assert c.t_statistic == pytest.approx(0.05 / (sd / 2))  # mean / (sd / sqrt(4)) = 0.7746
    assert c.t_pvalue == pytest.approx(stats.ttest_rel(list(BETTER.values()), list(BASE.values())).pvalue)
    assert c.wilcoxon_pvalue == pytest.approx(stats.wilcoxon([0.1, 0.2, 0.0, -0.1]).pvalue)
    assert c.ci_low <= c.mean_difference <= c.ci_high
    assert c.confidence == 0.95
    assert not c.significant()
    again = compare_scores(BASE, BETTER, n_bootstrap=500, seed=1)
    assert (again.ci_low, again.ci_high) == (c.ci_low, c.ci_high)  # seeded


def test_identical_systems_do_not_produce_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = compare_scores(BASE, dict(BASE))
    assert (c.mean_difference, c.t_statistic, c.t_pvalue, c.wilcoxon_pvalue, c.cohens_d) == (0, 0, 1, 1, 0)
    assert (c.ci_low, c.ci_high) == (0.0, 0.0)
    assert (c.wins, c.ties, c.losses) == (0, 4, 0)
    assert all(v is not None for v in c.to_dict().values())


def test_constant_shift_and_single_query():
    shifted = {q: v + 0.1 for q, v in BASE.items()}
    c = compare_scores(BASE, shifted)
    assert c.t_statistic == math.inf and c.t_pvalue == 0.0 and c.cohens_d == math.inf
    assert c.to_dict()["cohens_d"] is None  # JSON has no Infinity
    one = compare_scores({"q": 0.1}, {"q": 0.3})
    assert one.n == 1 and math.isnan(one.t_pvalue) and one.mean_difference == pytest.approx(0.2)
    assert one.to_dict()["t_pvalue"] is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"baseline_scores": {"q1": 1.0, "q2": 1.0}, "system_scores": {"q1": 1.0}},
            "per-query scores cover different queries (1 only in 'baseline', 0 only in 'system')",
        ),
        ({"baseline_scores": {}, "system_scores": {}}, "no queries to compare"),
        (
            {"baseline_scores": {"q": 1.0}, "system_scores": {"q": float("nan")}},
            "per-query scores must be finite numbers",
        ),
        (
            {"baseline_scores": {"q": 1.0}, "system_scores": {"q": 1.0}, "confidence": 1.5},
            "confidence must be between 0 and 1, got 1.5",
        ),
        (
            {"baseline_scores": {"q": 1.0}, "system_scores": {"q": 1.0}, "n_bootstrap": 0},
            "n_bootstrap must be >= 1, got 0",
        ),
    ],
)
def test_compare_scores_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError) as info:
        compare_scores(**kwargs)
    assert str(info.value) == message


def test_compare_to_baseline():
    per_query = {
        "a": {q: {"ndcg@10": v, "precision@10": v} for q, v in BASE.items()},
        "b": {q: {"ndcg@10": v, "precision@10": v} for q, v in BETTER.items()},
    }
    comparisons = compare_to_baseline(per_query, n_bootstrap=100)
    assert [(c.baseline, c.system, c.metric) for c in comparisons] == [
        ("a", "b", "ndcg@10"),
        ("a", "b", "precision@10"),
    ]
    with pytest.raises(ValueError) as info:
        compare_to_baseline(per_query, baseline="c")
    assert str(info.value) == "unknown baseline 'c'; allowed: a, b"
    with pytest.raises(ValueError) as info:
        compare_to_baseline(per_query, metrics=["mrr@10"])
    assert str(info.value) == "unknown metric 'mrr@10'; allowed: ndcg@10, precision@10"


# ------------------------------------------------------------------------------------------------ report

EVIL = "<script>alert(1)</script>"
QRELS = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}, EVIL: {"a": 1}}


def small_result(systems=None):
    systems = systems or [
        FunctionSystem("default", lambda q, k: ["a", "b", "c"][:k]),
        FunctionSystem(EVIL, lambda q, k: ["c", "x"][:k]),
    ]
    return evaluate(systems, QRELS, cutoffs=(1, 3), progress=False, n_bootstrap=100)


def strict_json(path):
    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def test_write_report_files_and_contents(tmp_path):
    result = small_result()
    written = write_report(result, tmp_path / "out")
    out = tmp_path / "out"
    expected = {
        "results.json",
        "comparisons.json",
        "meta.json",
        "per_query.csv",
        "per_query.json",
        "runs.json",
        "curves.png",
        "differences.png",
        "distributions.png",
        "report.md",
        "report.html",
    }
    assert {p.name for p in out.iterdir()} == expected
    assert {p.name for p in written.values()} == expected
    for name in ("curves.png", "differences.png", "distributions.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    results = strict_json(out / "results.json")
    assert list(results) == ["default", EVIL]  # top-level keys are exactly the system names
    assert results["default"]["ndcg@3"] == pytest.approx(result.means["default"]["ndcg@3"])
    assert "latency_p95_ms" in results[EVIL]
    comparisons = strict_json(out / "comparisons.json")
    assert comparisons["baseline"] == "default"
    assert {c["metric"] for c in comparisons["comparisons"]} == set(result.ranking_keys)
    assert strict_json(out / "meta.json")["cutoffs"] == [1, 3]
    assert strict_json(out / "per_query.json")[EVIL]["q2"]["hit_rate@1"] == 1.0
    assert strict_json(out / "runs.json")["default"]["q1"] == ["a", "b", "c"]

    with (out / "per_query.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["system", "query_id", *result.ranking_keys, "latency_ms"]
    assert len(rows) == 2 * 3
    row = next(r for r in rows if r["system"] == EVIL and r["query_id"] == "q2")
    assert float(row["ndcg@1"]) == 1.0

    page = (out / "report.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for text in (page, markdown):
        assert "<script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "curves.png" in text and "differences.png" in text and "distributions.png" in text


def test_single_system_report_has_no_difference_plot(tmp_path):
    (tmp_path / "differences.png").write_bytes(b"stale")
    result = small_result([FunctionSystem("only", lambda q, k: ["a"])])
    written = write_report(result, tmp_path)
    assert "differences" not in written
    assert not (tmp_path / "differences.png").exists()
    assert "differences.png" not in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_format_table_is_aligned():
    table = format_table({"default": {"ndcg@10": 0.97, "latency_p50_ms": 123.456}, "tfidf": {"ndcg@10": 0.9}})
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "default", "tfidf"]
    assert lines[2].split() == ["ndcg@10", "0.9700", "0.9000"]
    assert lines[3].split() == ["latency_p50_ms", "123.5", "-"]
    # right-aligned numeric columns: every value column ends at the same offset
    ends = {len(line) for line in (lines[0], lines[2])}
    assert len(ends) == 1
    assert lines[2].index("0.9700") + len("0.9700") == lines[0].index("default") + len("default")
    assert format_table(small_result()).splitlines()[0].split()[:2] == ["metric", "default"]
