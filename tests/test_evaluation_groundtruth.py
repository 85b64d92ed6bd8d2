"""Ground truth: qrels files, label-derived and session-derived qrels, unknown ids; every malformed input path."""

from __future__ import annotations

import itertools
import json
import logging
import random

import pytest

from recommender.article import Article
from recommender.errors import LoadError
from recommender.evaluation import (
    GroundTruthError,
    load_qrels,
    qrels_from_labels,
    qrels_from_sessions,
    qrels_summary,
    save_qrels,
    unknown_ids,
)


def art(article_id: str, **extra) -> Article:
    section = extra.pop("section", None)
    tags = tuple(extra.pop("tags", ()))
    return Article(id=article_id, title=article_id, section=section, tags=tags, extra=extra)


# ------------------------------------------------------------------------------------------------ qrels files


def write(tmp_path, text: str, name: str = "qrels.tsv", raw: bytes | None = None):
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_load_qrels_reads_ints_floats_and_drops_zero_grades(tmp_path):
    path = write(tmp_path, "\ufeffquery_id\tdoc_id\tgrade\nq1\td1\t2\nq1\td2\t0.5\n\nq1\td3\t0\nq2\td1\t1.0\n")
    qrels = load_qrels(path)
    assert qrels == {"q1": {"d1": 2, "d2": 0.5}, "q2": {"d1": 1}}
    assert isinstance(qrels["q2"]["d1"], int)


def test_save_qrels_round_trip(tmp_path):
    qrels = {"q1": {"d1": 2, "d2": 1 / 3}, "q0": {"d9": 1}}
    assert load_qrels(save_qrels(qrels, tmp_path / "sub" / "q.tsv")) == qrels


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("", 1, "empty file: expected header 'query_id<TAB>doc_id<TAB>grade'"),
        ("q,d,g\n", 1, "bad header: expected 'query_id<TAB>doc_id<TAB>grade', got 'q,d,g'"),
        (
            "query_id\tdoc_id\nq\td\n",
            1,
            "bad header: expected 'query_id<TAB>doc_id<TAB>grade', got 'query_id\\tdoc_id'",
        ),
        ("query_id\tdoc_id\tgrade\nq1\td1\t1\nq1\td2\n", 3, "expected 3 tab-separated columns, got 2"),
        ("query_id\tdoc_id\tgrade\nq1\td1\t1\textra\n", 2, "expected 3 tab-separated columns, got 4"),
        ("query_id\tdoc_id\tgrade\nq1\td1\thigh\n", 2, "grade is not a number: 'high'"),
        ("query_id\tdoc_id\tgrade\nq1\td1\tnan\n", 2, "grade is not finite: 'nan'"),
        ("query_id\tdoc_id\tgrade\nq1\td1\t-1\n", 2, "grade is negative: '-1'"),
        ("query_id\tdoc_id\tgrade\n\td1\t1\n", 2, "empty query_id"),
        ("query_id\tdoc_id\tgrade\nq1\t \t1\n", 2, "empty doc_id"),
        ("query_id\tdoc_id\tgrade\nq1\tq1\t1\n", 2, "doc_id equals query_id 'q1'"),
        ("query_id\tdoc_id\tgrade\nq1\td1\t1\nq1\td1\t2\n", 3, "duplicate pair ('q1', 'd1'), first on line 2"),
    ],
)
def test_load_qrels_errors_name_file_and_line(tmp_path, text, line, reason):
    path = write(tmp_path, text)
    with pytest.raises(GroundTruthError) as info:
        load_qrels(path)
    assert str(info.value) == f"{path}:{line}: {reason}"
    assert (info.value.line, info.value.reason) == (line, reason)


def test_load_qrels_bad_encoding(tmp_path):
    path = write(tmp_path, "", raw=b"query_id\tdoc_id\tgrade\nq\xff\td\t1\n")
    with pytest.raises(GroundTruthError) as info:
        load_qrels(path)
    assert str(info.value) == f"{path}:2: not valid UTF-8"


def test_load_qrels_missing_file(tmp_path):
    path = tmp_path / "nope.tsv"
    with pytest.raises(LoadError) as info:
        load_qrels(path)
    assert str(info.value) == f"{path}: cannot read: No such file or directory"


# ------------------------------------------------------------------------------------------------ labels


def test_scalar_labels_group_by_value_and_never_include_self():
    articles = [
        art("a", story_id="s1"),
        art("b", story_id="s1"),
        art("c", story_id="s1"),
        art("d", story_id="s2"),
        art("e", story_id=""),
        art("f"),
        art("g", story_id="s3"),
    ]
    qrels = qrels_from_labels(articles, "story_id")
    # s2 and s3 have one member: no related article, so no query; e, f are unlabelled
    assert qrels == {"a": {"b": 1, "c": 1}, "b": {"a": 1, "c": 1}, "c": {"a": 1, "b": 1}}
    for grading in ("any", "jaccard"):  # a scalar is a one-element set: every grading agrees
        assert qrels_from_labels(articles, "story_id", grading) == qrels


def test_numeric_scalar_labels_and_article_attributes():
    articles = [
        art("a", thread_id=7, section="sport"),
        art("b", thread_id=7, section="sport"),
        art("c", thread_id=8, section="news"),
    ]
    assert qrels_from_labels(articles, "thread_id") == {"a": {"b": 1}, "b": {"a": 1}}
    assert qrels_from_labels(articles, "section") == {"a": {"b": 1}, "b": {"a": 1}}


TOPIC_ARTICLES = [
    art("a", topics=["earn"]),
    art("b", topics=["earn", "acq"]),
    art("c", topics=["acq", "earn"]),
    art("d", topics=["crude"]),
    art("e", topics=[]),
    art("f", topics=["acq"]),
]


def test_list_labels_exact():
    # identical sets only: b and c ({earn, acq})
    assert qrels_from_labels(TOPIC_ARTICLES, "topics", "exact") == {"b": {"c": 1}, "c": {"b": 1}}


def test_list_labels_any():
    assert qrels_from_labels(TOPIC_ARTICLES, "topics", "any") == {
        "a": {"b": 1, "c": 1},
        "b": {"a": 1, "c": 1, "f": 1},
        "c": {"a": 1, "b": 1, "f": 1},
        "f": {"b": 1, "c": 1},
    }


def test_list_labels_jaccard_by_hand():
    qrels = qrels_from_labels(TOPIC_ARTICLES, "topics", "jaccard")
    # |{earn} & {earn,acq}| / |{earn} | {earn,acq}| = 1/2 ; {earn,acq} vs {acq,earn} = 2/2 ; {acq} vs {earn,acq} = 1/2
    assert qrels == {
        "a": {"b": 0.5, "c": 0.5},
        "b": {"a": 0.5, "c": 1.0, "f": 0.5},
        "c": {"a": 0.5, "b": 1.0, "f": 0.5},
        "f": {"b": 0.5, "c": 0.5},
    }
    assert qrels_from_labels(TOPIC_ARTICLES, "topics", "jaccard", queries=["a", "zzz"]) == {"a": qrels["a"]}


def test_jaccard_matches_brute_force_pairs():
    rng = random.Random(7)
    labels = ["t1", "t2", "t3", "t4", "t5"]
    articles = [art(f"x{i}", topics=rng.sample(labels, rng.randint(0, 3))) for i in range(40)]
    qrels = qrels_from_labels(articles, "topics", "jaccard")
    expected: dict[str, dict[str, float]] = {}
    for one, two in itertools.permutations(articles, 2):
        s1, s2 = set(one.extra["topics"]), set(two.extra["topics"])
        if s1 & s2:
            expected.setdefault(one.id, {})[two.id] = len(s1 & s2) / len(s1 | s2)
    assert qrels == expected


@pytest.mark.parametrize(
    "articles, field, grading, error, message",
    [
        ([art("a")], "topics", "fuzzy", ValueError, "unknown grading 'fuzzy'; allowed: exact, any, jaccard"),
        (
            [art("a")],
            "",
            "exact",
            ValueError,
            "field must be a non-empty string naming an article attribute or extra key",
        ),
        (
            [art("a", topics={"x": 1})],
            "topics",
            "exact",
            GroundTruthError,
            "article 'a': field 'topics' holds an unsupported dict",
        ),
        (
            [art("a", topics=[["x"]])],
            "topics",
            "any",
            GroundTruthError,
            "article 'a': field 'topics' holds an unsupported list",
        ),
        (
            [art("a", story_id="s"), art("a", story_id="s")],
            "story_id",
            "exact",
            GroundTruthError,
            "duplicate article id 'a'",
        ),
    ],
)
def test_label_errors(articles, field, grading, error, message):
    with pytest.raises(error) as info:
        qrels_from_labels(articles, field, grading)
    assert str(info.value) == message


def test_no_labels_gives_empty_qrels_with_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert qrels_from_labels([art("a"), art("b")], "story_id") == {}
    assert "no article has a non-empty 'story_id' label" in caplog.text


# ------------------------------------------------------------------------------------------------ sessions


def sessions_file(tmp_path, lines: list) -> object:
    path = tmp_path / "sessions.jsonl"
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n", encoding="utf-8"
    )
    return path


def test_sessions_count_grading_popularity_and_stats(tmp_path, caplog):
    path = sessions_file(
        tmp_path,
        [
            {"session_id": "s1", "article_ids": ["a", "b", "c"]},
            {"session_id": "s2", "article_ids": ["a", "b", "a", "ghost"]},  # re-read of a, unknown ghost
            "",
            {"session_id": 3, "article_ids": ["b", "a"]},
            {"session_id": "s4", "article_ids": []},
        ],
    )
    with caplog.at_level(logging.WARNING):
        qrels, popularity, stats = qrels_from_sessions(path, ["a", "b", "c", "d"])
    # a -> b co-read in s1 and s2 (count 2); b -> a only in session 3; later-read only, never backwards
    assert qrels == {"a": {"b": 2, "c": 1}, "b": {"c": 1, "a": 1}}
    assert popularity == {"a": 3, "b": 3, "c": 1}  # sessions that read each article
    assert stats.to_dict() == {
        "lines": 5,
        "sessions": 4,
        "reads": 9,
        "repeated_reads": 1,
        "unknown_reads": 1,
        "unknown_ids": 1,
        "queries": 2,
        "pairs": 4,
    }
    assert stats.unknown_ids == ("ghost",)
    assert "1 reads of 1 ids not in the corpus were left out" in caplog.text


def test_sessions_binary_grading(tmp_path):
    path = sessions_file(
        tmp_path, [{"session_id": "s1", "article_ids": ["a", "b"]}, {"session_id": "s2", "article_ids": ["a", "b"]}]
    )
    qrels, _, _ = qrels_from_sessions(path, {"a", "b"}, grading="binary")
    assert qrels == {"a": {"b": 1}}


@pytest.mark.parametrize(
    "lines, line, reason",
    [
        (["{not json"], 1, "invalid JSON: Expecting property name enclosed in double quotes"),
        ([{"session_id": "s1", "article_ids": []}, "[1, 2]"], 2, "expected a JSON object, got array"),
        ([{"article_ids": ["a"]}], 1, "missing or empty session_id"),
        ([{"session_id": "  ", "article_ids": ["a"]}], 1, "missing or empty session_id"),
        ([{"session_id": "s1", "article_ids": "a,b"}], 1, "article_ids must be a list, got string"),
        ([{"session_id": "s1"}], 1, "article_ids must be a list, got null"),
        ([{"session_id": "s1", "article_ids": ["a", 5]}], 1, "article_ids[1] must be a non-empty string, got 5"),
        ([{"session_id": "s1", "article_ids": [""]}], 1, "article_ids[0] must be a non-empty string, got ''"),
        (
            [{"session_id": "s1", "article_ids": ["a"]}, {"session_id": "s1", "article_ids": ["b"]}],
            2,
            "duplicate session_id 's1', first on line 1",
        ),
    ],
)
def test_sessions_malformed_lines(tmp_path, lines, line, reason):
    path = sessions_file(tmp_path, lines)
    with pytest.raises(GroundTruthError) as info:
        qrels_from_sessions(path, {"a", "b"})
    assert str(info.value) == f"{path}:{line}: {reason}"


def test_sessions_invalid_grading(tmp_path):
    with pytest.raises(ValueError) as info:
        qrels_from_sessions(sessions_file(tmp_path, []), {"a"}, grading="weighted")
    assert str(info.value) == "unknown grading 'weighted'; allowed: count, binary"


# ------------------------------------------------------------------------------------------------ unknown ids


def test_unknown_ids_reports_queries_and_docs(caplog):
    qrels = {"q1": {"a": 1, "gone": 1}, "old": {"a": 1, "gone": 2, "lost": 1}}
    with caplog.at_level(logging.WARNING):
        report = unknown_ids(qrels, ["q1", "a"])
    assert report.queries == ("old",)
    assert report.docs == ("gone", "lost")
    assert report.pairs == 3
    assert report.count == 3
    assert report.to_dict() == {
        "unknown_query_ids": 1,
        "unknown_doc_ids": 2,
        "pairs_with_unknown_doc": 3,
        "examples": ["gone", "lost", "old"],
    }
    assert "qrels hold 1 query ids and 2 doc ids not in the corpus" in caplog.text
    assert unknown_ids(qrels, ["q1", "a", "old", "gone", "lost"]).count == 0


def test_qrels_summary():
    assert qrels_summary({"q": {"a": 1, "b": 2}, "r": {"a": 1}}) == {
        "queries": 2,
        "pairs": 3,
        "relevant_per_query_mean": 1.5,
        "relevant_per_query_median": 1.5,
        "distinct_grades": 2,
    }


def test_trec_qrels_are_read_with_ir_measures(tmp_path):
    """Standard TREC qrels (what TREC tools and most datasets ship) read into the same qrels as our TSV."""
    trec = tmp_path / "qrels.trec"
    trec.write_text("q1 0 d1 2\nq1 0 d2 1\nq1 0 d3 0\nq2 0 d1 -1\nq2 Q0 d4 1\n", encoding="utf-8")
    assert load_qrels(trec) == {"q1": {"d1": 2, "d2": 1}, "q2": {"d4": 1}}
    tsv = save_qrels({"q1": {"d1": 2, "d2": 1}, "q2": {"d4": 1}}, tmp_path / "same.tsv")
    assert load_qrels(tsv) == load_qrels(trec)
    broken = tmp_path / "broken.trec"
    broken.write_text("q1 0 d1 2\nq1 0 d2\n", encoding="utf-8")
    with pytest.raises(
        GroundTruthError, match=r"broken.trec:2: not a TREC qrels line \(query iteration doc grade\): 'q1 0 d2'"
    ):
        load_qrels(broken)
