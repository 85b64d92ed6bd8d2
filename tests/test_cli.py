"""The CLI: thin, one-line errors with documented exit codes, help with an example on every command."""

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import REPO, write_jsonl
from recommender.cli import app

runner = CliRunner()


def _run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def _commands():
    out = []
    for group in (None, "index"):
        cmd = app if group is None else next(g.typer_instance for g in app.registered_groups if g.name == group)
        for c in cmd.registered_commands:
            name = c.name or c.callback.__name__
            out.append(([group] if group else []) + [name])
    return out


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example_and_is_documented(command):
    result = _run(*command, "--help")
    assert result.exit_code == 0
    assert "Example: recommender " in result.output
    readme = (REPO / "README.md").read_text()
    assert f"recommender {' '.join(command)}" in readme, f"README does not document `recommender {' '.join(command)}`"


def test_related_json_and_text(demo_index):
    result = _run("related", "demo-006", "--index-dir", demo_index, "-k", "4", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["article_id"] == "demo-006" and len(data["items"]) == 4
    assert "demo-006" not in [i["id"] for i in data["items"]]
    text = _run("related", "demo-006", "--index-dir", demo_index, "-k", "2")
    assert text.output.startswith("Related to demo-006: ") and len(text.output.strip().splitlines()) == 3
    sport = json.loads(_run("related", "demo-006", "--index-dir", demo_index, "--section", "sport", "--json").output)
    assert {i["section"] for i in sport["items"]} == {"sport"}


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["related", "nope"], 1, "error: article not found: 'nope'"),
        (["related", "demo-006", "--since", "soon"], 2, "since: not an ISO-8601 date: 'soon'"),
    ],
)
def test_related_errors(demo_index, args, code, message):
    result = _run(*args, "--index-dir", demo_index)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_related_without_an_index(tmp_path):
    result = _run("related", "x", "--index-dir", tmp_path)
    assert result.exit_code == 2
    assert result.output.strip() == f"error: no published index in {tmp_path}; run `recommender build` first"


def test_build_errors_are_one_line(tmp_path):
    cases = [
        (tmp_path / "missing.jsonl", 2, "error: {p}: no such file or folder"),
        (tmp_path / "empty.jsonl", 2, "error: {p}: empty file (no articles)"),
        (tmp_path / "data.xml", 2, "error: {p}: unknown format '.xml'; expected one of .jsonl, .ndjson, .json, .csv, .parquet, .pq"),
    ]
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "data.xml").write_text("<x/>")
    for path, code, message in cases:
        result = _run("build", path, "--index-dir", tmp_path / "idx")
        assert result.exit_code == code
        assert result.output.strip() == message.format(p=path)
    bad = write_jsonl(tmp_path / "bad.jsonl", ["{oops", {"id": "a"}, {"id": "b", "title": "ok"}])
    result = _run("build", bad, "--index-dir", tmp_path / "idx")
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        rf"error: 2 of 3 rows rejected \(66.7% > 1.0% allowed\): {re.escape(str(bad))}:1: json: invalid JSON: .*; "
        rf"{re.escape(str(bad))}:2: title: missing or empty; all rejects in .*rejects/v.*\.jsonl",
        lines[0],
    )


def test_build_and_index_commands(tmp_path, embedder, monkeypatch):
    import recommender.build as build_mod

    monkeypatch.setattr(build_mod, "Embedder", lambda *a, **k: embedder)  # reuse the session's model
    export = write_jsonl(tmp_path / "e.jsonl", [{"id": f"a{i}", "title": f"Title {i} about topic {i % 3}", "body": "Text " * 20} for i in range(8)])
    idx = tmp_path / "idx"
    first = _run("build", export, "--index-dir", idx, "--json")
    assert first.exit_code == 0, first.output
    v1 = json.loads(first.output)["version"]
    second = _run("build", export, "--index-dir", idx)
    assert second.exit_code == 0 and second.output.startswith("published v") and "unchanged 8" in second.output
    listed = _run("index", "list", "--index-dir", idx)
    assert listed.exit_code == 0 and len(listed.output.strip().splitlines()) == 2 and listed.output.count("*") == 1
    info = json.loads(_run("index", "info", v1, "--index-dir", idx).output)
    assert info["name"] == v1 and info["manifest"]["count"] == 8 and info["build_report"]["counts"]["new"] == 8
    back = _run("index", "rollback", "--index-dir", idx)
    assert back.output.strip() == f"published {v1}"
    v2 = json.loads(_run("index", "list", "--index-dir", idx, "--json").output)[-1]["name"]
    assert _run("index", "rollback", v2, "--index-dir", idx).output.strip() == f"published {v2}"
    gc = _run("index", "gc", "--index-dir", idx, "--keep", "1")
    assert gc.exit_code == 0 and gc.output.startswith("removed 1 version(s)")
    missing = _run("index", "info", "vnope", "--index-dir", idx)
    assert missing.exit_code == 2 and missing.output.strip() == f"error: no version 'vnope' in {idx}"


def test_env_settings_and_python_dash_m(tmp_path):
    env_dir = tmp_path / "from-env"
    result = subprocess.run(
        [sys.executable, "-m", "recommender", "index", "list"],
        capture_output=True, text=True, env={"RECOMMENDER_INDEX_DIR": str(env_dir), "PATH": "/usr/bin:/bin"}, cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no versions in {env_dir}; run `recommender build` first"
