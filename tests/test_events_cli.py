"""The events commands and `evaluate --events`: one-line errors, and the loop from simulated readers to an offline
evaluation of their click sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender.cli import app
from recommender.evaluation.sessions import qrels_from_sessions
from tests.support.server import copy_index

runner = CliRunner()


def _run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--events", "e", "--qrels", "q.tsv"],
            "error: --events (online evaluation) cannot be combined with --qrels (offline evaluation)",
        ),
        (
            ["--events", "e", "--sessions", "s", "--articles", "a"],
            "error: --events (online evaluation) cannot be combined with --sessions, --articles (offline evaluation)",
        ),
        (
            ["--label-field", "story_id", "--since", "2026-11-01"],
            "error: --since is an option of online evaluation: give --events DIR",
        ),
        (["--events", "e", "--since", "last week"], "error: --since: not an ISO-8601 date: 'last week'"),
        (["--events", "e", "--since", "2026-11-02", "--until", "2026-11-01"], "error: --since must be before --until"),
        (["--events", "e", "--shares", "control=0.5,b"], "error: --shares: expected NAME=NUMBER, got 'b'"),
        (
            ["--events", "e", "--shares", "control=0.5,b=0.6"],
            "error: --shares: shares must add up to 1, got 1.1 (control=0.5, b=0.6)",
        ),
    ],
)
def test_evaluate_events_usage_errors(args, message, tmp_path) -> None:
    result = _run("evaluate", "--report", tmp_path / "r", *args)
    assert result.exit_code == 2 and _one_error_line(result) == message


def test_missing_events_folders_are_one_line(tmp_path) -> None:
    result = _run("evaluate", "--events", tmp_path / "none", "--report", tmp_path / "r")
    assert result.exit_code == 2 and _one_error_line(result) == f"error: --events {tmp_path / 'none'}: no such folder"
    result = _run("events", "compact", "--events", tmp_path / "none")
    assert result.exit_code == 2 and _one_error_line(result) == f"error: {tmp_path / 'none'}: no such events folder"
    result = _run("events", "to-sessions", "--events", tmp_path / "none", "--out", tmp_path / "s.jsonl")
    assert result.exit_code == 2 and _one_error_line(result) == f"error: {tmp_path / 'none'}: no such events folder"
    result = _run("events", "simulate", "--url", "ftp://x", "--visitors", "1")
    assert result.exit_code == 1 and _one_error_line(result) == "error: not an http(s) URL: 'ftp://x'"
    result = _run("events", "simulate", "--index-dir", tmp_path / "none", "--visitors", "1")
    assert result.exit_code == 2 and _one_error_line(result) == (
        f"error: no index published in {tmp_path / 'none'}; run `recommender build` first (or give --url)"
    )
    result = _run("events", "simulate", "--drop", "b=2", "--visitors", "1")
    assert result.exit_code == 2 and _one_error_line(result) == "error: drop share of 'b' must be from 0 to 1, got 2.0"


def test_from_simulated_readers_to_an_offline_evaluation_of_their_sessions(demo_index: Path, tmp_path: Path) -> None:
    """simulate (variants, in process) -> evaluate --events -> compact -> to-sessions -> evaluate --sessions."""
    index = copy_index(demo_index, tmp_path / "index")
    diverse = tmp_path / "diverse.json"
    # Full boxes in both variants (no relevance floor): the planted difference is in what fills them.
    diverse.write_text(json.dumps({"diversity": 0.9, "min_relevance": 0}))
    env = {
        "RECOMMENDER_VARIANTS": json.dumps(
            {"control": {"share": 0.5}, "diverse": {"share": 0.5, "config": str(diverse)}}
        ),
        "RECOMMENDER_RANKING": json.dumps({"min_relevance": 0}),
    }
    events = tmp_path / "events"
    result = _run(
        "events", "simulate", "--index-dir", index, "--events", events, "--visitors", 600, "--seed", 2, env=env
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("simulated 600 visitors")

    report = tmp_path / "online"
    result = _run("evaluate", "--events", events, "--report", report, env=env)
    assert result.exit_code == 0, result.output
    assert "CTR against control (visitors are the unit of analysis)" in result.output
    assert "no sample ratio mismatch" in result.stderr
    results = json.loads((report / "results.json").read_text())
    assert set(results) == {"control", "diverse"}
    # the planted difference is real ranking: a diverse box shows fewer same-story items, which readers prefer
    assert results["diverse"]["ctr"] < results["control"]["ctr"]

    result = _run("events", "compact", "--events", events, "--now")
    assert result.exit_code == 0 and result.output.startswith("compacted "), result.output

    sessions = tmp_path / "sessions.jsonl"
    result = _run("events", "to-sessions", "--events", events, "--out", sessions, "--variant", "control")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in sessions.read_text().splitlines()]
    assert lines and all(set(s) == {"session_id", "article_ids"} and len(s["article_ids"]) >= 2 for s in lines)
    _, _, stats = qrels_from_sessions(sessions, {f"demo-{n:03d}" for n in range(1, 141)})
    assert stats.unknown_reads == 0 and stats.pairs > 0

    offline = tmp_path / "offline"
    result = _run(
        "evaluate", "--index-dir", index, "--sessions", sessions, "--report", offline, "--systems", "default,random"
    )
    assert result.exit_code == 0, result.output
    means = json.loads((offline / "results.json").read_text())
    assert means["default"]["ndcg@10"] > means["random"]["ndcg@10"]
