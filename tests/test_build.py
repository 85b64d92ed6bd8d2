"""The build pipeline end to end with the real model: publish, incremental reuse, rejects, validation, WAL folding."""

import json

import numpy as np
import pytest

from index import IndexDirectory, Manifest, ManifestMismatchError, VectorStore
from recommender import RejectsExceededError, ValidationFailedError
from recommender.build import build_index
from recommender.changelog import ChangeLog
from recommender.engine import Recommender
from recommender.settings import Settings
from tests.support.paths import write_jsonl


def _records(n=30):
    topics = ["ceasefire talks in Lisgard", "tariff ruling by the high court", "flooding along the Teyna river"]
    return [
        {
            "id": f"n{i}",
            "title": f"Report {i} on {topics[i % 3]}",
            "body": f"Story number {i} about {topics[i % 3]}. " * 5,
            "published_at": f"2026-08-{1 + i % 28:02d}T10:00:00Z",
            "section": ["world", "business", "climate"][i % 3],
        }
        for i in range(n)
    ]


def test_demo_index_published_and_valid(demo_index, demo_records):
    d = IndexDirectory(demo_index)
    path = d.current_path()
    manifest = Manifest.read(path)
    assert manifest.count == len(demo_records) == 140
    assert manifest.model == "all-MiniLM-L6-v2" and manifest.dimension == 384 and manifest.index_type == "flat"
    manifest.verify_files(path, digests=True)
    report = json.loads((demo_index / "reports" / f"{path.name}.json").read_text())
    assert (
        report["counts"]["new"] == 140 and report["validation"]["ok"] and report["validation"]["self_retrieval"] == 1.0
    )
    assert set(report["timings"]) >= {"load", "embed", "lexical", "index", "neighbors", "validate", "write"}
    assert np.load(path / "neighbors_semantic.npy").shape == (140, 50)


def test_incremental_rebuild_embeds_only_changes(tmp_path, embedder):
    export = write_jsonl(tmp_path / "e.jsonl", _records(30))
    settings = Settings(index_dir=tmp_path / "idx")
    first = build_index([export], settings, embedder=embedder, progress=False)
    assert first.counts["embedded"] == 30 and first.published
    records = _records(30)
    records[0]["title"] = "A changed headline about something else entirely"
    del records[1]
    records.append({"id": "n99", "title": "Brand new article", "body": "New text."})
    write_jsonl(export, records)
    second = build_index([export], settings, embedder=embedder, progress=False)
    assert {k: second.counts[k] for k in ("new", "changed", "unchanged", "removed", "embedded")} == {
        "new": 1,
        "changed": 1,
        "unchanged": 28,
        "removed": 1,
        "embedded": 2,
    }
    # Reused vectors are exactly what a full rebuild computes.
    full = build_index([export], settings, embedder=embedder, progress=False, full=True)
    assert full.counts["embedded"] == 30
    d = IndexDirectory(settings.index_dir)
    a = np.load(d.version_path(second.version) / "vectors.npy")
    b = np.load(d.version_path(full.version) / "vectors.npy")
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert d.names() == sorted([first.version, second.version, full.version])


def test_too_many_rejects_publishes_nothing(tmp_path, embedder):
    export = write_jsonl(tmp_path / "e.jsonl", _records(10) + ["not json", {"id": "x"}])
    settings = Settings(index_dir=tmp_path / "idx")
    with pytest.raises(RejectsExceededError) as info:
        build_index([export], settings, embedder=embedder, progress=False)
    rejects = next((tmp_path / "idx" / "rejects").glob("*.jsonl"))
    assert str(info.value) == (
        f"2 of 12 rows rejected (16.7% > 1.0% allowed): {export}:11: json: invalid JSON: Expecting value at column 1; "
        f"{export}:12: title: missing or empty (article 'x'); all rejects in {rejects}"
    )
    assert [json.loads(line)["field"] for line in rejects.read_text().splitlines()] == ["json", "title"]
    assert IndexDirectory(settings.index_dir).current() is None
    # Within the allowed share the build publishes and reports the rejects.
    ok = build_index([export], settings.overridden(max_reject_share=0.2), embedder=embedder, progress=False)
    assert ok.published and ok.counts["rejected"] == 2 and ok.counts["articles"] == 10


def test_validation_failure_keeps_previous_version(tmp_path, embedder, monkeypatch):
    export = write_jsonl(tmp_path / "e.jsonl", _records(12))
    settings = Settings(index_dir=tmp_path / "idx")
    good = build_index([export], settings, embedder=embedder, progress=False)
    real_encode = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts, **kw: np.zeros_like(real_encode(texts)))
    with pytest.raises(ValidationFailedError, match="validation failed, nothing published: 12 zero vectors"):
        build_index([export], settings, embedder=embedder, progress=False, full=True)
    d = IndexDirectory(settings.index_dir)
    assert d.current() == good.version and d.names() == [good.version]


def test_recall_floor_refuses_a_poor_approximate_index(tmp_path, embedder, demo_records):
    export = write_jsonl(
        tmp_path / "e.jsonl",
        demo_records
        + [dict(r, id=r["id"] + "-b", title=r["summary"]) for r in demo_records]
        + [dict(r, id=r["id"] + "-c", title=r["title"] + " (analysis)", body=r["summary"]) for r in demo_records],
    )
    # 420 articles in 10 IVF lists, probing only 1 and not allowed to widen: recall@10 is far from perfect.
    settings = Settings(index_dir=tmp_path / "idx", index_type="ivf", ivf_nprobe=1, recall_floor=0.99)
    with pytest.raises(
        ValidationFailedError,
        match=r"ivf index recall@10 .* is below the floor 0.990 \(nprobe up to 1\); nothing published",
    ):
        build_index([export], settings.overridden(max_search_breadth=1), embedder=embedder, progress=False)
    assert IndexDirectory(settings.index_dir).current() is None
    # Allowed to widen, the build doubles nprobe until the floor is met and the index file keeps the value.
    tuned = build_index([export], settings, embedder=embedder, progress=False)
    assert tuned.published and tuned.recall_at_10 >= 0.99 and tuned.search_params["nprobe"] in (2, 4, 8, 10)
    current = IndexDirectory(settings.index_dir).current_path()
    assert Manifest.read(current).extra["search_params"] == tuned.search_params
    assert VectorStore.load(current, index_type="ivf").index.nprobe == tuned.search_params["nprobe"]
    # Approximate for both retrievers: HNSW, and TF-IDF lists that skip terms in more than 20 articles.
    large = settings.overridden(index_type="hnsw", recall_floor=0.9, lexical_exact_threshold=0, lexical_max_postings=20)
    report = build_index([export], large, embedder=embedder, progress=False)
    assert report.index_type == "hnsw" and report.recall_at_10 >= 0.9
    assert 0.0 < report.lexical_recall_at_10 < 1.0
    extra = Manifest.read(IndexDirectory(settings.index_dir).current_path()).extra
    assert extra["recall_at_10"] == report.recall_at_10 and extra["lexical_recall_at_10"] == report.lexical_recall_at_10
    exact = build_index([export], settings.overridden(index_type="flat"), embedder=embedder, progress=False)
    assert exact.lexical_recall_at_10 is None and exact.recall_at_10 is None  # exact on both sides: nothing to measure


def test_live_changes_are_folded_into_the_next_build(tmp_path, embedder):
    export = write_jsonl(tmp_path / "e.jsonl", _records(12))
    settings = Settings(index_dir=tmp_path / "idx")
    build_index([export], settings, embedder=embedder, progress=False)
    wal = ChangeLog(settings.index_dir)
    from recommender import parse_article

    wal.append_upsert(parse_article({"id": "live-1", "title": "Pushed between builds", "body": "Live text."}))
    wal.append_delete("n3")
    report = build_index([export], settings, embedder=embedder, progress=False)
    assert report.counts["live_changes"] == 2 and report.counts["articles"] == 12
    rec = Recommender.open(settings.index_dir)
    assert "live-1" in rec and "n3" not in rec
    assert rec.wal_seq == 2 and wal.entries() == []
    seq = wal.append_delete("n4")
    assert seq == 3  # sequence numbers never restart after compaction


def test_model_mismatch_is_refused(demo_index):
    with pytest.raises(
        ManifestMismatchError, match="index was built with model 'all-MiniLM-L6-v2' but 'other-model' is configured"
    ):
        Recommender.open(demo_index, model="other-model")


def test_vectors_of_a_failed_or_killed_build_are_resumed_not_re_embedded(tmp_path, embedder, monkeypatch):
    export = write_jsonl(tmp_path / "e.jsonl", _records(30))
    settings = Settings(index_dir=tmp_path / "idx", checkpoint_every=8)
    calls = []
    real_encode = embedder.encode

    def dies_on_third_chunk(texts, **kw):
        calls.append(len(texts))
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real_encode(texts, **kw)

    monkeypatch.setattr(embedder, "encode", dies_on_third_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        build_index([export], settings, embedder=embedder, progress=False)
    assert sorted(p.name for p in (settings.index_dir / "checkpoint").iterdir()) == [
        "key.json",
        "seg-000000.npz",
        "seg-000001.npz",
    ]
    # The next night: the 16 finished vectors are taken from the checkpoint, only 14 are embedded.
    calls.clear()
    monkeypatch.setattr(embedder, "encode", lambda texts, **kw: calls.append(len(texts)) or real_encode(texts, **kw))
    resumed = build_index([export], settings, embedder=embedder, progress=False)
    assert (
        resumed.published and resumed.counts["resumed"] == 16 and resumed.counts["embedded"] == 14 and sum(calls) == 14
    )
    assert not (settings.index_dir / "checkpoint").exists()  # cleared once a version is published
    # Same vectors as a build that never failed.
    clean = build_index([export], Settings(index_dir=tmp_path / "clean"), embedder=embedder, progress=False)
    a = VectorStore.load(IndexDirectory(settings.index_dir).current_path(), index_type="flat")
    b = VectorStore.load(IndexDirectory(clean.index_dir).current_path(), index_type="flat")
    np.testing.assert_allclose(np.asarray(a.vectors), np.asarray(b.vectors), atol=1e-6)


def test_articles_resumed_in_an_incremental_build_get_their_own_signatures(tmp_path, embedder, monkeypatch):
    """A killed incremental build (a previous version exists, so unchanged articles reuse their rows) leaves a
    checkpoint; the next build takes those vectors, and must also compute those articles' MinHash signatures."""
    from recommender.version_files import SIGNATURES_FILE

    settings = Settings(index_dir=tmp_path / "idx", checkpoint_every=4)
    build_index([write_jsonl(tmp_path / "a.jsonl", _records(12))], settings, embedder=embedder, progress=False)
    grown = _records(12) + [{**r, "id": f"new{i}"} for i, r in enumerate(_records(12))]
    export = write_jsonl(tmp_path / "b.jsonl", grown)
    real_encode, calls = embedder.encode, []

    def dies_on_second_chunk(texts, **kw):
        calls.append(len(texts))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real_encode(texts, **kw)

    monkeypatch.setattr(embedder, "encode", dies_on_second_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        build_index([export], settings, embedder=embedder, progress=False)
    monkeypatch.setattr(embedder, "encode", real_encode)
    report = build_index([export], settings, embedder=embedder, progress=False)
    assert report.counts["unchanged"] == 12 and report.counts["resumed"] == 4 and report.counts["embedded"] == 8
    signatures = np.load(IndexDirectory(settings.index_dir).current_path() / SIGNATURES_FILE)
    assert (signatures.max(axis=1) > 0).all()  # none left at zero
    clean = build_index([export], Settings(index_dir=tmp_path / "clean"), embedder=embedder, progress=False)
    np.testing.assert_array_equal(signatures, np.load(IndexDirectory(clean.index_dir).current_path() / SIGNATURES_FILE))


def test_a_gate_failure_keeps_its_vectors_for_the_next_build_unless_the_embedding_changed(tmp_path, embedder):
    export = write_jsonl(tmp_path / "e.jsonl", _records(30))
    settings = Settings(index_dir=tmp_path / "idx")

    def refuse(staged, previous):
        raise ValidationFailedError("quality gate failed: nDCG@10 dropped")

    with pytest.raises(ValidationFailedError, match="quality gate failed"):
        build_index([export], settings, embedder=embedder, progress=False, gate=refuse)
    assert IndexDirectory(settings.index_dir).current() is None
    # Another embedding configuration cannot use those vectors: the checkpoint is discarded.
    other = settings.overridden(lead_words=60)
    with pytest.raises(ValidationFailedError, match="quality gate failed"):
        build_index([export], other, embedder=embedder, progress=False, gate=refuse)
    # ...but its own vectors are kept for it; --full starts afresh.
    assert build_index([export], other, embedder=embedder, progress=False, full=True).counts["resumed"] == 0
    with pytest.raises(ValidationFailedError, match="quality gate failed"):
        build_index([export], settings, embedder=embedder, progress=False, gate=refuse, full=True)
    report = build_index([export], settings, embedder=embedder, progress=False)
    assert report.counts["resumed"] == 30 and report.counts["embedded"] == 0 and report.counts["changed"] == 30
    assert ", resumed 30;" in report.summary()
