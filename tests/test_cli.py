"""The CLI: thin, one-line errors with documented exit codes, help with an example on every command."""

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from recommender.cli import app
from tests.support.paths import REPO, write_jsonl

runner = CliRunner()


def _run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def _one_error_line(result) -> str:
    """The whole output must be one non-empty line, on stderr: no usage banner, box or traceback."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert result.stdout.strip() == "" and result.stderr.strip() == lines[0]
    return lines[0]


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
    assert all(i["relevance"] >= 0.5 for i in data["items"])
    text = _run("related", "demo-006", "--index-dir", demo_index, "-k", "2")
    assert text.output.startswith("Related to demo-006: ") and len(text.output.strip().splitlines()) == 3
    assert " p=0." in text.output.splitlines()[1] or " p=1.00" in text.output.splitlines()[1]
    # demo-006's story has 6 follow-ups: nothing else clears the floor, and the box says so
    floored = json.loads(_run("related", "demo-006", "--index-dir", demo_index, "-k", "20", "--json").output)
    assert len(floored["items"]) < 20 and floored["below_floor"] == 20 - len(floored["items"])
    short = _run("related", "demo-006", "--index-dir", demo_index, "-k", "20").output
    assert short.strip().endswith(f"({floored['below_floor']} more below the relevance floor)")
    filled = json.loads(
        _run("related", "demo-006", "--index-dir", demo_index, "-k", "20", "--fill", "recent", "--json").output
    )
    assert len(filled["items"]) == 20 and [i["fallback"] for i in filled["items"]].count(True) == 20 - len(
        floored["items"]
    )
    sport = _run(
        "related", "demo-006", "--index-dir", demo_index, "--section", "sport", "--min-relevance", "0", "--json"
    )
    assert {i["section"] for i in json.loads(sport.output)["items"]} == {"sport"}
    assert (
        json.loads(_run("related", "demo-006", "--index-dir", demo_index, "--section", "sport", "--json").output)[
            "items"
        ]
        == []
    )


def test_related_unknown_article(demo_index):
    result = _run("related", "nope", "--index-dir", demo_index)
    assert result.exit_code == 1
    assert _one_error_line(result) == "error: article not found: 'nope'"


@pytest.mark.parametrize(
    "args, env, message",
    [
        (
            ["related", "demo-006", "-k", "0"],
            None,
            "error: Invalid value for '-k' / '--k': Input should be greater than or equal to 1",
        ),
        (
            ["related", "demo-006", "--since", "soon"],
            None,
            "error: Invalid value for '--since': not an ISO-8601 date: 'soon'",
        ),
        (
            ["related", "demo-006", "--until", "2024-13-01"],
            None,
            "error: Invalid value for '--until': not an ISO-8601 date: '2024-13-01'",
        ),
        (
            ["related", "demo-006", "--window", "0"],
            None,
            "error: Invalid value for '--window': Input should be greater than 0",
        ),
        (
            ["related", "demo-006", "--min-relevance", "1.5"],
            None,
            "error: Invalid value for '--min-relevance': Input should be less than or equal to 1",
        ),
        (
            ["related", "demo-006", "--fill", "random"],
            None,
            "error: Invalid value for '--fill': Input should be 'none', 'section_recent' or 'recent'",
        ),
        (
            ["calibrate", "--qrels", "q.tsv", "--label-field", "story_id"],
            None,
            "error: give exactly one ground truth: --qrels FILE, --label-field NAME or --sessions FILE",
        ),
        (
            ["calibrate", "--label-field", "story_id", "--method", "magic"],
            None,
            "error: --method must be isotonic or sigmoid, got 'magic'",
        ),
        (
            ["related", "demo-006", "--window", "inf"],
            None,
            "error: Invalid value for '--window': Input should be a finite number",
        ),
        (["related", "demo-006", "--bogus"], None, "error: No such option: --bogus"),
        (["related"], None, "error: Invalid value for 'ID' / '--url': give an article ID or --url URL (one of them)"),
        (
            ["related", "demo-006"],
            {"RECOMMENDER_PORT": "abc"},
            "error: RECOMMENDER_PORT='abc': Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            ["related", "demo-006"],
            {"RECOMMENDER_EMBEDDING_BACKEND": "int4"},
            "error: RECOMMENDER_EMBEDDING_BACKEND='int4': must be one of auto, float32, bf16, onnx, onnx-int8, openvino, openvino-bf16",
        ),
        (
            ["related", "demo-006"],
            {"RECOMMENDER_RANKING__DIVERSITY": "2"},
            "error: RECOMMENDER_RANKING: diversity: Input should be less than or equal to 1",
        ),
        (
            ["related", "demo-006"],
            {"RECOMMENDER_RANKING__BOGUS": "1"},
            "error: RECOMMENDER_RANKING: unknown ranking option(s): bogus; allowed: candidates, diversity, feedback_confidence, feedback_min_related, fill, freshness_half_life_days, fusion, min_relevance, name, near_duplicate_threshold, prf_docs, prf_weight, rrf_k, same_section_boost, semantic_weight, window_days",
        ),
        (["serve", "--port", "99999"], None, "error: --port=99999: Input should be less than or equal to 65535"),
        (
            ["build", "x.jsonl", "--max-drop", "-1"],
            None,
            "error: Invalid value for '--max-drop': Input should be greater than or equal to 0",
        ),
        (["evaluate", "--qrels", "q.tsv"], None, "error: Missing option '--report'."),
        (["nosuch"], None, "error: No such command 'nosuch'."),
    ],
)
def test_usage_and_settings_errors_are_one_line_with_exit_2(tmp_path, args, env, message):
    result = _run(*args, "--index-dir", tmp_path, env=env)
    assert result.exit_code == 2
    assert _one_error_line(result) == message


def test_help_still_exits_0():
    result = _run("related", "--help")
    assert result.exit_code == 0 and "--window" in result.output and result.output.count("error:") == 0


def test_index_dir_that_is_a_file(tmp_path):
    regular = tmp_path / "regular-file"
    regular.write_text("not an index")
    export = write_jsonl(tmp_path / "e.jsonl", [{"id": "a", "title": "t"}])
    for args in (["related", "x"], ["build", export], ["index", "list"]):
        result = _run(*args, "--index-dir", regular)
        assert result.exit_code == 2
        assert _one_error_line(result) == f"error: --index-dir {regular} is not a folder"
    nested = _run("related", "x", "--index-dir", regular / "sub")
    assert nested.exit_code == 2
    assert _one_error_line(nested) == f"error: --index-dir {regular / 'sub'} is not a folder ({regular} is a file)"
    from_env = _run("index", "list", env={"RECOMMENDER_INDEX_DIR": str(regular)})
    assert from_env.exit_code == 2
    assert _one_error_line(from_env) == f"error: RECOMMENDER_INDEX_DIR {regular} is not a folder"


def test_build_of_an_unreadable_file(tmp_path, monkeypatch):
    from tests.test_loading import deny_reading

    export = write_jsonl(tmp_path / "e.jsonl", [{"id": "a", "title": "t", "body": "b"}])
    deny_reading(monkeypatch, export)
    result = _run("build", export, "--index-dir", tmp_path / "idx")
    assert result.exit_code == 2
    assert _one_error_line(result) == f"error: {export}: permission denied"


def _related_json(*args):
    result = _run("related", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["items"]


def test_related_exclude(demo_index):
    top = [i["id"] for i in _related_json("demo-006", "--index-dir", demo_index, "-k", "4", "--min-relevance", "0")]
    items = _related_json(
        "demo-006",
        "--index-dir",
        demo_index,
        "-k",
        "4",
        "--min-relevance",
        "0",
        "--exclude",
        f"{top[0]}, {top[1]},",
        "--exclude",
        top[2],
    )
    ids = [i["id"] for i in items]
    assert len(ids) == 4 and not set(ids) & set(top[:3])
    assert ids[0] == top[3]  # the rest keep their order


def test_related_window(demo_index, demo_records):
    from datetime import datetime

    def day(text):
        return datetime.fromisoformat(text)

    source = day(next(r for r in demo_records if r["id"] == "demo-006")["published_at"])
    unbounded = _related_json("demo-006", "--index-dir", demo_index, "-k", "10")
    assert any(abs(day(i["published_at"]) - source).days >= 2 for i in unbounded)  # the window has work to do
    windowed = _related_json("demo-006", "--index-dir", demo_index, "-k", "10", "--window", "2")
    assert windowed and all(abs(day(i["published_at"]) - source).total_seconds() <= 2 * 86400 for i in windowed)


def test_related_language(tmp_path, embedder):
    from recommender.build import build_index
    from recommender.settings import Settings

    angles = [
        ("Ceasefire talks open in Lisgard", "Delegations arrived in Lisgard for the first round of ceasefire talks."),
        (
            "Ceasefire envoys trade proposals",
            "Envoys exchanged written proposals on prisoner swaps and a ceasefire line.",
        ),
        ("Ceasefire deal signed after talks", "After three days of talks the two sides signed a ceasefire in Lisgard."),
    ]
    rows = [
        {
            "id": f"{lang}-{i}",
            "language": lang,
            "title": f"{title} ({lang})",
            "body": f"{body} Reporters from the {lang} desk followed day {i}.",
        }
        for lang in ("en", "de")
        for i, (title, body) in enumerate(angles)
    ]
    build_index(
        [write_jsonl(tmp_path / "e.jsonl", rows)],
        Settings(index_dir=tmp_path / "idx"),
        embedder=embedder,
        progress=False,
    )
    both = {
        i["id"][:2] for i in _related_json("en-0", "--index-dir", tmp_path / "idx", "-k", "5", "--min-relevance", "0")
    }
    assert both == {"en", "de"}
    assert {
        i["id"]
        for i in _related_json("en-0", "--index-dir", tmp_path / "idx", "--language", "DE", "--min-relevance", "0")
    } == {"de-0", "de-1", "de-2"}
    assert {i["id"] for i in _related_json("en-0", "--index-dir", tmp_path / "idx", "--language", "en")} == {
        "en-1",
        "en-2",
    }
    assert _related_json("en-0", "--index-dir", tmp_path / "idx", "--language", "fr") == []


def test_related_without_an_index(tmp_path):
    result = _run("related", "x", "--index-dir", tmp_path)
    assert result.exit_code == 2
    assert result.output.strip() == f"error: no published index in {tmp_path}; run `recommender build` first"


def test_build_errors_are_one_line(tmp_path):
    cases = [
        (tmp_path / "missing.jsonl", 2, "error: {p}: no such file or folder"),
        (tmp_path / "empty.jsonl", 2, "error: {p}: empty file (no articles)"),
        (
            tmp_path / "data.xml",
            2,
            "error: {p}: unknown format '.xml'; expected one of .jsonl, .ndjson, .json, .csv, .parquet, .pq",
        ),
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
        rf"{re.escape(str(bad))}:2: title: missing or empty \(article 'a'\); all rejects in .*rejects/v.*\.jsonl",
        lines[0],
    )


def test_build_and_index_commands(tmp_path, embedder, monkeypatch):
    export = write_jsonl(
        tmp_path / "e.jsonl",
        [{"id": f"a{i}", "title": f"Title {i} about topic {i % 3}", "body": "Text " * 20} for i in range(8)],
    )
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
        capture_output=True,
        text=True,
        env={"RECOMMENDER_INDEX_DIR": str(env_dir), "PATH": "/usr/bin:/bin"},
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no versions in {env_dir}; run `recommender build` first"


def test_python_dash_m_usage_error_is_one_line(tmp_path):
    """The console entry point (not only CliRunner) prints one line for a bad option value and a bad env var."""
    for args, env, message in (
        (
            ["related", "x", "-k", "0"],
            {},
            "error: Invalid value for '-k' / '--k': Input should be greater than or equal to 1",
        ),
        (
            ["related", "x"],
            {"RECOMMENDER_PORT": "abc"},
            "error: RECOMMENDER_PORT='abc': Input should be a valid integer, unable to parse string as an integer",
        ),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "recommender", *args, "--index-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **env},
            cwd=REPO,
            check=False,
        )
        assert (result.returncode, result.stdout, result.stderr) == (2, "", message + "\n")


def _all_commands():
    """Every click command under the root, with its path (``["index", "list"]``)."""
    import typer.main

    root = typer.main.get_command(app)
    out = []

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            out.append((path, command))

    walk(root, [])
    return out


def test_help_shows_every_default_and_environment_variable():
    """A flag backed by a setting names its RECOMMENDER_* variable and default; any other option with a default
    shows it. Brackets survive (the help is plain text, not markup that eats "[distributed]")."""
    from recommender.settings import Settings
    from recommender.settings_errors import FLAG_OF_FIELD as _FLAG_OF_FIELD

    field_of_flag = {flag: field for field, flag in _FLAG_OF_FIELD.items()}
    missing = []
    for path, command in _all_commands():
        text = _run(*path, "--help").output
        flat = " ".join(text.split())
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help" or getattr(param, "is_flag", False):
                continue
            flag = max(param.opts, key=len)
            field = field_of_flag.get(flag, param.name)
            if tuple(path) == ("demo",) and field == "index_dir":  # the demo's own folder, not the setting
                if "Where to build the demo index (default: ~/.cache/" not in flat:
                    missing.append("demo --index-dir: its default folder not shown")
            elif field in Settings.model_fields and field not in ("ranking",):
                if f"env RECOMMENDER_{field.upper()})" not in flat or "(default: " not in flat:
                    missing.append(f"{' '.join(path)} {flag}: no default or env var")
            elif param.default is not None and param.default != () and "[default: " not in flat:
                missing.append(f"{' '.join(path)} {flag}: default not shown")
    assert missing == []
    assert "pip install '.[distributed]'" in " ".join(_run("build", "--help").output.split())
    assert "<bool>" not in _run("build", "--help").output


def test_demo_says_where_its_index_is_and_what_to_try_and_each_command_works(tmp_path, embedder):
    folder = tmp_path / "demo-index"
    result = _run("demo", "--no-serve", "--index-dir", folder)
    assert result.exit_code == 0, result.output
    assert f"The demo index is in {folder}. Try:" in result.output
    commands = [
        line.strip() for line in result.output.splitlines() if line.strip().startswith(("recommender ", "curl "))
    ]
    assert [c.split()[0] + " " + c.split()[1] for c in commands] == [
        "recommender related",
        "recommender evaluate",
        "curl '"[:-1] + commands[2].split()[1],
    ]
    related = _run(*commands[0].split()[1:])
    assert related.exit_code == 0 and related.output.startswith("Related to demo-006: ")
    evaluate_args = [a.replace("./demo-report", str(tmp_path / "demo-report")) for a in commands[1].split()[1:]]
    evaluated = _run(*evaluate_args)
    assert evaluated.exit_code == 0, evaluated.output
    assert (tmp_path / "demo-report" / "report.html").is_file()
    assert commands[2].startswith("curl 'http://127.0.0.1:8000/v1/articles/demo-006/related")


def test_index_info_says_the_published_version_is_published(demo_index):
    info = json.loads(_run("index", "info", "--index-dir", demo_index).output)
    assert info["published"] is True and info["build_report"]["published"] is True


def test_warnings_are_one_line_like_errors(tmp_path, embedder):
    export = write_jsonl(
        tmp_path / "e.jsonl",
        [{"id": "a", "title": "First"}, {"id": "a", "title": "Again"}]
        + [{"id": f"n{i}", "title": f"Story {i}"} for i in range(150)],
    )
    result = _run("build", export, "--index-dir", tmp_path / "idx")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert warnings and all(line.startswith("warning: ") for line in warnings), result.stderr
    assert any("'a'" in line for line in warnings)  # the duplicate id is named
