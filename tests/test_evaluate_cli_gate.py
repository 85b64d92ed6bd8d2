"""`recommender evaluate` end to end and the publish gate refusing a worse build."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from conftest import DEMO_CORPUS, write_jsonl
from index import IndexDirectory
from recommender import ValidationFailedError
from recommender.build import build_index
from recommender.cli import app
from recommender.evaluation import qrels_from_labels, save_qrels
from recommender.evaluation.gate import make_gate
from recommender.loading import load_articles
from recommender.settings import Settings

runner = CliRunner()


def test_evaluate_on_an_index_with_label_field(demo_index, tmp_path):
    report = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", "--index-dir", str(demo_index), "--label-field", "story_id", "--report", str(report), "--k", "5", "--k", "10"])
    assert result.exit_code == 0, result.output
    results = json.loads((report / "results.json").read_text())
    assert list(results) == ["default", "tfidf", "embedding", "recent", "recent-same-section", "random"]
    assert results["default"]["ndcg@10"] > 0.9 > results["recent-same-section"]["ndcg@10"] > results["random"]["ndcg@10"]
    assert results["default"]["self_recommendation_rate@10"] == 0.0
    assert results["default"]["near_duplicate_rate@10"] == 0.0
    for name in ("report.html", "report.md", "per_query.csv", "comparisons.json", "curves.png"):
        assert (report / name).is_file()
    assert "ndcg@10" in result.output


def test_evaluate_with_qrels_and_config_file(demo_index, tmp_path):
    articles = load_articles([DEMO_CORPUS]).articles
    qrels = save_qrels(qrels_from_labels(articles, "story_id"), tmp_path / "qrels.tsv")
    cfg = tmp_path / "lexical-only.json"
    cfg.write_text(json.dumps({"semantic_weight": 0.0}))
    result = runner.invoke(app, ["evaluate", "--index-dir", str(demo_index), "--qrels", str(qrels), "--report", str(tmp_path / "r"), "--systems", "default,tfidf", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert list(json.loads((tmp_path / "r" / "results.json").read_text())) == ["default", "tfidf", "lexical-only"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--report", "r"], "error: give exactly one ground truth: --qrels FILE, --label-field NAME or --sessions FILE"),
        (["--report", "r", "--label-field", "story_id"], "error: give --articles FILE (indexed into a cache) or --index-dir DIR"),
    ],
)
def test_evaluate_usage_errors(args, message):
    result = runner.invoke(app, ["evaluate", *args])
    assert result.exit_code == 2 and result.output.strip() == message


def test_evaluate_unknown_system(demo_index, tmp_path):
    result = runner.invoke(app, ["evaluate", "--index-dir", str(demo_index), "--label-field", "story_id", "--report", str(tmp_path), "--systems", "default,bm42"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown system(s) bm42; allowed: default, tfidf, embedding, recent, recent-same-section, random (or a --config file)"


def test_gate_passes_an_equal_build_and_refuses_a_worse_one(demo_index, demo_records, tmp_path, embedder):
    index_dir = tmp_path / "idx"
    shutil.copytree(demo_index, index_dir)
    articles = load_articles([DEMO_CORPUS]).articles
    qrels = save_qrels(qrels_from_labels(articles, "story_id"), tmp_path / "qrels.tsv")
    settings = Settings(index_dir=index_dir)
    ok = build_index([DEMO_CORPUS], settings, embedder=embedder, progress=False, gate=make_gate(qrels, max_drop=0.01))
    assert ok.published and ok.gate["passed"] and ok.gate["new"] == pytest.approx(ok.gate["previous"])
    # A broken export: every body replaced by boilerplate, so stories can no longer be told apart.
    broken = [dict(r, title=f"Update {i}", summary="", body="Read more news on our site. Subscribe today.") for i, r in enumerate(demo_records)]
    export = write_jsonl(tmp_path / "broken.jsonl", broken)
    with pytest.raises(ValidationFailedError, match=r"quality gate: ndcg@10 0\.\d+ is 0\.\d+ below the published version's 0\.\d+ \(allowed drop 0.01\); nothing published"):
        build_index([export], settings, embedder=embedder, progress=False, gate=make_gate(qrels, max_drop=0.01))
    d = IndexDirectory(index_dir)
    assert d.current() == ok.version
    failed = list((index_dir / "reports").glob("*.failed.json"))
    assert len(failed) == 1
    data = json.loads(failed[0].read_text())
    assert data["published"] is False and data["gate"]["passed"] is False and "quality gate" in data["error"]


def test_gate_rejects_malformed_ground_truth_before_building(tmp_path):
    bad = tmp_path / "qrels.tsv"
    bad.write_text("query\tdoc\n")
    with pytest.raises(Exception, match=f"{bad}:1: "):
        make_gate(bad)
