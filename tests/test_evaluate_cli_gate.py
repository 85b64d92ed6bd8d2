"""`recommender evaluate` end to end and the publish gate refusing a worse build."""

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from index import IndexDirectory
from recommender import ValidationFailedError
from recommender.build import build_index
from recommender.cli import app
from recommender.evaluation import qrels_from_labels, save_qrels
from recommender.evaluation.gate import make_gate
from recommender.loading import load_articles
from recommender.settings import Settings
from tests.support.paths import DEMO_CORPUS, write_jsonl

runner = CliRunner()


def test_evaluate_on_an_index_with_label_field(demo_index, tmp_path):
    report = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--index-dir",
            str(demo_index),
            "--label-field",
            "story_id",
            "--report",
            str(report),
            "--k",
            "5",
            "--k",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((report / "results.json").read_text())
    assert list(results) == ["default", "tfidf", "embedding", "recent", "recent-same-section", "random"]
    # the default box stops at the relevance floor (nDCG@10 counts its empty slots): 0.892 when written
    assert (
        results["default"]["ndcg@10"] > 0.85 > results["recent-same-section"]["ndcg@10"] > results["random"]["ndcg@10"]
    )
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
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--index-dir",
            str(demo_index),
            "--qrels",
            str(qrels),
            "--report",
            str(tmp_path / "r"),
            "--systems",
            "default,tfidf",
            "--config",
            str(cfg),
        ],
    )
    assert result.exit_code == 0, result.output
    assert list(json.loads((tmp_path / "r" / "results.json").read_text())) == ["default", "tfidf", "lexical-only"]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--report", "r"],
            "error: give exactly one ground truth: --qrels FILE, --label-field NAME or --sessions FILE (or --events DIR)",
        ),
        (
            ["--report", "r", "--label-field", "story_id"],
            "error: give --articles FILE (indexed into a cache) or --index-dir DIR",
        ),
    ],
)
def test_evaluate_usage_errors(args, message):
    result = runner.invoke(app, ["evaluate", *args])
    assert result.exit_code == 2 and result.output.strip() == message


def test_evaluate_unknown_system(demo_index, tmp_path):
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--index-dir",
            str(demo_index),
            "--label-field",
            "story_id",
            "--report",
            str(tmp_path),
            "--systems",
            "default,bm42",
        ],
    )
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == "error: unknown system(s) bm42; allowed: default, tfidf, embedding, recent, recent-same-section, random (or a --config file)"
    )


def test_gate_passes_an_equal_build_and_refuses_a_worse_one(demo_index, demo_records, tmp_path, embedder):
    index_dir = tmp_path / "idx"
    shutil.copytree(demo_index, index_dir)
    articles = load_articles([DEMO_CORPUS]).articles
    qrels = save_qrels(qrels_from_labels(articles, "story_id"), tmp_path / "qrels.tsv")
    settings = Settings(index_dir=index_dir)
    ok = build_index([DEMO_CORPUS], settings, embedder=embedder, progress=False, gate=make_gate(qrels, max_drop=0.01))
    assert ok.published and ok.gate["passed"] and ok.gate["new"] == pytest.approx(ok.gate["previous"])
    # A broken export: every body replaced by boilerplate, so stories can no longer be told apart.
    broken = [
        dict(r, title=f"Update {i}", summary="", body="Read more news on our site. Subscribe today.")
        for i, r in enumerate(demo_records)
    ]
    export = write_jsonl(tmp_path / "broken.jsonl", broken)
    with pytest.raises(
        ValidationFailedError,
        match=r"quality gate: ndcg@10 0\.\d+ is 0\.\d+ below the published version's 0\.\d+ \(allowed drop 0.01\); nothing published",
    ):
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


# ------------------------------------------------------------------------------------------- ground-truth files


def story_sessions(records, path, *, extra=()):
    """A reading log where readers follow each story: every story read in publication order and in reverse."""
    stories: dict[str, list[dict]] = {}
    for record in sorted(records, key=lambda r: r["published_at"]):
        stories.setdefault(record["story_id"], []).append(record)
    sessions = []
    for story, members in sorted(stories.items()):
        ids = [m["id"] for m in members]
        sessions += [
            {"session_id": f"{story}-fwd", "article_ids": ids},
            {"session_id": f"{story}-back", "article_ids": ids[::-1]},
        ]
    return write_jsonl(path, [*sessions, *extra])


def _stderr_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_evaluate_counts_unknown_ids_in_meta_and_reports(demo_index, tmp_path):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(
        "query_id\tdoc_id\tgrade\ndemo-001\tdemo-002\t1\ndemo-003\tdemo-004\t2\nghost-q\tdemo-002\t1\ndemo-003\tghost-d\t1\n"
    )
    report = tmp_path / "r"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--index-dir",
            str(demo_index),
            "--qrels",
            str(qrels),
            "--report",
            str(report),
            "--systems",
            "default,tfidf",
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((report / "meta.json").read_text())
    assert meta["unknown_ids"] == {
        "unknown_query_ids": 1,
        "unknown_doc_ids": 1,
        "pairs_with_unknown_doc": 1,
        "examples": ["ghost-d", "ghost-q"],
    }
    assert meta["queries"] == 2  # ghost-q cannot be asked
    assert meta["ground_truth"] == {"kind": "qrels", "source": str(qrels)}
    line = "ground-truth ids not in the corpus: 1 query id (not evaluated), 1 doc id (1 judged pair with a missing doc), e.g. ghost-d, ghost-q"
    assert line in _stderr_lines(result)
    assert f"- {line}" in (report / "report.md").read_text()
    assert line in (report / "report.html").read_text()


def test_evaluate_with_sessions(demo_index, demo_records, tmp_path):
    gone = {"session_id": "stale", "article_ids": ["gone-1", "demo-001", "gone-2", "gone-1"]}
    sessions = story_sessions(demo_records, tmp_path / "sessions.jsonl", extra=[gone])
    report = tmp_path / "r"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--index-dir",
            str(demo_index),
            "--sessions",
            str(sessions),
            "--report",
            str(report),
            "--systems",
            "recent,default,tfidf",
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((report / "meta.json").read_text())
    stories = len({r["story_id"] for r in demo_records})
    assert meta["ground_truth"] == {"kind": "sessions", "source": str(sessions)}
    assert meta["sessions"] == {
        "lines": 2 * stories + 1,
        "sessions": 2 * stories + 1,
        "reads": 2 * len(demo_records) + 4,
        "repeated_reads": 0,
        "unknown_reads": 3,
        "unknown_ids": 2,
        "queries": len(demo_records),
        "pairs": meta["sessions"]["pairs"],
        "unknown_id_examples": ["gone-1", "gone-2"],
    }
    from recommender.evaluation.formatting import sessions_line

    assert sessions_line(meta["sessions"]).startswith(
        f"sessions: {2 * stories + 1} sessions on {2 * stories + 1} lines, "
    )
    assert sessions_line(meta["sessions"]) in _stderr_lines(result)
    assert sessions_line(meta["sessions"]) in (report / "report.md").read_text()
    results = json.loads((report / "results.json").read_text())
    assert list(results) == ["default", "recent", "tfidf"]  # default first: it is what the others are compared with
    assert results["default"]["ndcg@10"] > 0.8 > results["recent"]["ndcg@10"]
    assert "novelty@10" in results["default"]  # popularity comes from the sessions


def test_evaluate_indexes_articles_into_a_cache_without_index_dir(tmp_path, demo_records, embedder, monkeypatch):
    # Six whole stories of the bundled corpus: the same articles, a fifth of the embedding time.
    stories = sorted({r["story_id"] for r in demo_records})[:6]
    export = write_jsonl(tmp_path / "articles.jsonl", [r for r in demo_records if r["story_id"] in stories])
    qrels = save_qrels(qrels_from_labels(load_articles([export]).articles, "story_id"), tmp_path / "qrels.tsv")
    report = tmp_path / "r"
    args = [
        "evaluate",
        "--articles",
        str(export),
        "--qrels",
        str(qrels),
        "--report",
        str(report),
        "--systems",
        "default,tfidf",
        "--k",
        "10",
    ]
    result = runner.invoke(app, args, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.exit_code == 0, result.output
    cached = list((tmp_path / "cache" / "related-articles" / "eval").iterdir())
    assert len(cached) == 1 and IndexDirectory(cached[0]).current() is not None
    assert f"indexing 1 file(s) into {cached[0]}" in result.stderr
    results = json.loads((report / "results.json").read_text())
    assert results["default"]["ndcg@10"] > 0.85 and results["tfidf"]["ndcg@10"] > 0.5
    # The terminal shows whether a difference is real, not only the means: the numbers of comparisons.json.
    comparison = next(
        c for c in json.loads((report / "comparisons.json").read_text())["comparisons"] if c["metric"] == "ndcg@10"
    )
    lines = result.stdout.splitlines()
    title = lines.index(
        f"ndcg@10 against default (mean {results['default']['ndcg@10']:.4f}), paired over {comparison['n']} queries"
    )
    assert lines[title + 1].split() == ["system", "mean", "difference", "t-test", "p", "Wilcoxon", "p"]
    row = lines[title + 3].split()
    assert row[:3] == ["tfidf", f"{comparison['system_mean']:.4f}", f"{comparison['mean_difference']:+.4f}"]
    assert float(row[3]) == pytest.approx(comparison["t_pvalue"], rel=0.05)
    assert float(row[4]) == pytest.approx(comparison["wilcoxon_pvalue"], rel=0.05)


def test_evaluate_missing_articles_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = runner.invoke(
        app, ["evaluate", "--articles", str(missing), "--label-field", "story_id", "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {missing}: no such file or folder"


# ------------------------------------------------------------------------------------------- the gate, from the CLI


def test_gate_reads_sessions_or_qrels_by_content(demo_records, tmp_path):
    from recommender.evaluation.gate import ground_truth_kind, load_gate_truth

    log = story_sessions(demo_records, tmp_path / "reads.txt")  # a sessions file whatever its name
    qrels, source = load_gate_truth(log)
    assert source["ground_truth_kind"] == "sessions" and ground_truth_kind(log) == "sessions"
    first = min(demo_records, key=lambda r: r["published_at"])
    story = {r["id"] for r in demo_records if r["story_id"] == first["story_id"]} - {first["id"]}
    assert set(qrels[first["id"]]) == story and set(qrels[first["id"]].values()) == {1}
    tsv = save_qrels({"a": {"b": 1}}, tmp_path / "truth.jsonl")  # a qrels TSV, misleadingly named
    assert load_gate_truth(tsv) == ({"a": {"b": 1}}, {"ground_truth_kind": "qrels"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"session_id": "s1", "article_ids": "demo-001"}\n')
    with pytest.raises(Exception) as info:
        make_gate(bad)
    assert str(info.value) == f"{bad}:1: article_ids must be a list, got string"


def test_build_gate_from_the_cli_with_sessions(demo_index, demo_records, tmp_path, embedder, monkeypatch):
    index_dir = tmp_path / "idx"
    shutil.copytree(demo_index, index_dir)
    sessions = story_sessions(demo_records, tmp_path / "sessions.jsonl")
    gate_args = ["--index-dir", str(index_dir), "--gate", str(sessions), "--max-drop", "0.01"]

    equal = runner.invoke(app, ["build", str(DEMO_CORPUS), *gate_args, "--json"])
    assert equal.exit_code == 0, equal.output
    passed = json.loads(equal.stdout)
    assert passed["gate"]["passed"] and passed["gate"]["ground_truth_kind"] == "sessions"
    assert passed["gate"]["new"] == pytest.approx(passed["gate"]["previous"]) and passed["gate"]["queries"] == len(
        demo_records
    )
    published = IndexDirectory(index_dir).current()

    broken = [
        dict(r, title=f"Update {i}", summary="", body="Read more news on our site. Subscribe today.")
        for i, r in enumerate(demo_records)
    ]
    worse = runner.invoke(app, ["build", str(write_jsonl(tmp_path / "broken.jsonl", broken)), *gate_args])
    assert worse.exit_code == 4
    lines = [line for line in worse.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert re.fullmatch(
        r"error: quality gate: ndcg@10 0\.\d{4} is 0\.\d{4} below the published version's 0\.\d{4} \(allowed drop 0\.01\); nothing published",
        lines[0],
    )
    assert IndexDirectory(index_dir).current() == published
    failed = list((index_dir / "reports").glob("*.failed.json"))
    assert len(failed) == 1 and failed[0].name.startswith("v") and failed[0].name != f"{published}.failed.json"
    gate = json.loads(failed[0].read_text())["gate"]
    assert gate["passed"] is False and gate["ground_truth_kind"] == "sessions" and gate["max_drop"] == 0.01
    assert gate["previous"] == pytest.approx(passed["gate"]["new"]) and gate["new"] < gate["previous"] - 0.01
    assert f"{gate['new']:.4f} is {gate['previous'] - gate['new']:.4f} below" in lines[0]
