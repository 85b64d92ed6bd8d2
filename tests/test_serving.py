"""LiveIndex without HTTP: loading and readiness, reload and failed loads, durable live changes, the cache."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from index import IndexDirectory
from recommender.article import parse_article
from recommender.changelog import ChangeLog
from recommender.engine import Recommender
from recommender.errors import ArticleNotFoundError
from recommender.options import RelatedOptions
from recommender.serving import LiveIndex, NotReadyError, ReloadFailedError, ResponseCache
from recommender.settings import Settings
from tests.support.server import copy_index, publish_copy

Q = RelatedOptions(k=6)


@pytest.fixture
def index_dir(demo_index: Path, tmp_path: Path) -> Path:
    return copy_index(demo_index, tmp_path / "index")


@pytest.fixture
def live(index_dir: Path, embedder) -> LiveIndex:
    index = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=embedder)
    index.load()
    assert index.ready
    return index


def _article(
    article_id: str, title: str = "Tessera probe sends first images from comet Okafor-Lind orbit", **extra
) -> object:
    return parse_article(
        {
            "id": article_id,
            "title": title,
            "body": "The Tessera spacecraft orbiting comet Okafor-Lind sent images.",
            "section": "science",
            **extra,
        }
    )


def _ids(payload: dict) -> list[str]:
    return [item["id"] for item in payload["items"]]


# -- readiness and loading ------------------------------------------------------------------------
def test_not_ready_until_a_version_is_published(tmp_path: Path, demo_index: Path, embedder) -> None:
    live = LiveIndex(Settings(index_dir=tmp_path / "empty", poll_interval=0), embedder=embedder)
    assert live.load() is None
    assert not live.ready
    assert "no index published" in live.reason
    with pytest.raises(NotReadyError):
        live.related("demo-001", Q)
    with pytest.raises(NotReadyError):
        live.upsert(_article("x"))
    assert live.info()["ready"] is False

    assert not (tmp_path / "empty").exists()  # a service waiting for its first build creates nothing
    copy_index(demo_index, tmp_path / "empty")  # a build publishes; the poller then notices it
    assert live.maybe_reload() is True
    assert live.ready and live.reason is None
    assert live.related("demo-001", Q).payload["items"]


def test_related_payload_shape_and_cache(live: LiveIndex) -> None:
    first = live.related("demo-006", Q)
    assert not first.cached
    payload = first.payload
    assert payload["article_id"] == "demo-006"
    assert payload["index_version"] == live.snapshot.version
    assert len(payload["items"]) + payload["below_floor"] == 6 and "demo-006" not in _ids(payload)
    item = payload["items"][0]
    assert set(item) >= {"id", "title", "url", "published_at", "section", "score", "reasons", "relevance", "fallback"}
    assert all("type" in r for r in item["reasons"])

    second = live.related("demo-006", Q)
    assert second.cached and second.etag == first.etag and second.payload == payload
    assert live.peek_related("demo-006", Q) is not None
    assert live.related_etag("demo-006", Q) == first.etag
    assert live.cache.hits >= 1

    other = live.related("demo-006", RelatedOptions(k=3))
    assert other.etag != first.etag and len(other.payload["items"]) == 3


def test_language_and_window_reach_the_engine(live: LiveIndex) -> None:
    live.upsert(_article("live-fr", language="fr"))
    assert _ids(live.related("demo-002", RelatedOptions(k=6, language="FR")).payload) == ["live-fr"]
    assert "live-fr" not in _ids(live.related("demo-002", RelatedOptions(k=50, language="en")).payload)
    source = live.article("demo-006")[0].published_at
    items = live.related("demo-006", RelatedOptions(k=50, window=2)).payload["items"]
    assert 0 < len(items) < 50
    for item in items:
        published = datetime.fromisoformat(item["published_at"])
        assert abs((published - source).total_seconds()) <= 2 * 86400


def test_filters_and_overrides_reach_the_engine(live: LiveIndex) -> None:
    only_world = live.related("demo-006", RelatedOptions(k=6, section="world")).payload
    assert only_world["items"] and all(i["section"] == "world" for i in only_world["items"])
    default = _ids(live.related("demo-006", Q).payload)
    excluded = _ids(live.related("demo-006", RelatedOptions(k=6, exclude=",".join(default[:2]))).payload)
    assert not set(default[:2]) & set(excluded)
    diverse = live.related("demo-006", RelatedOptions(k=6, diversity=0.9, freshness=1.0, min_relevance=0)).payload
    assert len(diverse["items"]) == 6


def test_unknown_article(live: LiveIndex) -> None:
    with pytest.raises(ArticleNotFoundError):
        live.related("no-such-article", Q)
    with pytest.raises(ArticleNotFoundError):
        live.article("no-such-article")


# -- live changes ---------------------------------------------------------------------------------
def test_upsert_is_logged_then_applied_and_invalidates_the_cache(live: LiveIndex, index_dir: Path) -> None:
    before = live.related("demo-002", Q)
    assert live.upsert(_article("live/1")) is True
    entries = ChangeLog(index_dir).entries()
    assert [(e.op, e.article_id) for e in entries] == [("upsert", "live/1")]
    assert live.snapshot.seq == entries[-1].seq and live.snapshot.pending == 1
    # recommendable at once, with its own related list
    assert _ids(live.related("live/1", Q).payload)
    after = live.related("demo-002", Q)
    assert not after.cached and after.etag != before.etag
    assert live.upsert(_article("live/1", title="Tessera probe: a new headline")) is False
    assert live.article("live/1")[0].title == "Tessera probe: a new headline"


def test_log_write_failure_leaves_memory_unchanged(live: LiveIndex, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(live.log, "append_upsert", broken)
    with pytest.raises(OSError):
        live.upsert(_article("never"))
    assert "never" not in live.snapshot.recommender


def test_delete(live: LiveIndex, index_dir: Path) -> None:
    with pytest.raises(ArticleNotFoundError):
        live.delete("no-such-article")
    assert ChangeLog(index_dir).entries() == []  # an unknown id writes nothing
    assert "demo-001" in _ids(live.related("demo-010", RelatedOptions(k=50, min_relevance=0)).payload)
    assert live.delete("demo-001") is True
    with pytest.raises(ArticleNotFoundError):
        live.related("demo-001", Q)
    assert "demo-001" not in _ids(live.related("demo-010", RelatedOptions(k=50, min_relevance=0)).payload)
    with pytest.raises(ArticleNotFoundError):
        live.delete("demo-001")


def test_restart_replays_the_log_and_gives_the_same_etags(live: LiveIndex, index_dir: Path, embedder) -> None:
    live.upsert(_article("live/2"))
    live.delete("demo-003")
    etag = live.related("live/2", Q).etag
    restarted = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=embedder)
    restarted.load()
    assert restarted.snapshot.pending == 2
    assert "live/2" in restarted.snapshot.recommender and "demo-003" not in restarted.snapshot.recommender
    assert restarted.related("live/2", Q).etag == etag


def test_catch_up_applies_changes_logged_by_another_process(live: LiveIndex, index_dir: Path, embedder) -> None:
    other = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=embedder)
    other.load()
    other.upsert(_article("from/other"))
    other.delete("demo-004")
    assert live.catch_up() == 2
    assert "from/other" in live.snapshot.recommender and "demo-004" not in live.snapshot.recommender
    # and a write here after the other process wrote keeps both in log order
    other.upsert(_article("from/other-2"))
    live.upsert(_article("from/here"))
    assert {"from/other-2", "from/here"} <= {a.id for a in live.snapshot.recommender.catalog.articles}
    assert live.snapshot.seq == 4


# -- reload ---------------------------------------------------------------------------------------
def test_reload_swaps_versions_and_keeps_live_changes(live: LiveIndex, index_dir: Path) -> None:
    live.upsert(_article("live/3"))
    old = live.snapshot
    cached = live.related("demo-006", Q)
    assert live.maybe_reload() is False  # nothing new published
    name = publish_copy(index_dir)
    assert live.maybe_reload() is True
    new = live.snapshot
    assert new.version == name != old.version
    assert "live/3" in new.recommender  # replayed past the version's wal_seq
    fresh = live.related("demo-006", Q)
    assert not fresh.cached and fresh.etag != cached.etag and fresh.payload["index_version"] == name
    # a request that started on the old version finishes on it
    assert old.recommender.related("demo-006", 3)
    assert live.reload().changed is False


def test_reload_reuses_the_live_vectors_it_already_embedded(
    live: LiveIndex, index_dir: Path, embedder, monkeypatch
) -> None:
    live.upsert(_article("live/a"))
    live.upsert(_article("live/b", title="Harbour strike ends after pay deal in Ostrava"))
    before = {
        i: live.snapshot.recommender.catalog.vectors([live.snapshot.recommender.catalog.position(i)])[0]
        for i in ("live/a", "live/b")
    }
    encoded: list[str] = []
    real_encode = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts, **kw: (encoded.extend(texts), real_encode(texts, **kw))[1])
    publish_copy(index_dir)
    assert live.maybe_reload() is True
    assert encoded == []  # a reload replays the log without calling the model again
    rec = live.snapshot.recommender
    for article_id, vector in before.items():
        assert (rec.catalog.vectors([rec.catalog.position(article_id)])[0] == vector).all()
    assert live.related("live/b", Q).payload["items"]
    # Text that differs from what the old version holds is embedded again.
    changed = _article("live/a", title="Tessera probe loses contact with Earth")
    fresh = Recommender.open(index_dir, embedder=embedder)
    fresh.upsert_many([changed, _article("live/b", title="Harbour strike ends after pay deal in Ostrava")], reuse=rec)
    assert len(encoded) == 1 and encoded[0].startswith("Tessera probe loses contact")


def test_failed_load_keeps_serving_the_previous_version(live: LiveIndex, index_dir: Path) -> None:
    old = live.snapshot.version
    name = publish_copy(index_dir)
    (IndexDirectory(index_dir).version_path(name) / "articles.jsonl").write_text("truncated\n")
    assert live.maybe_reload() is False
    assert live.ready and live.snapshot.version == old
    assert name in live.load_error and "articles.jsonl" in live.load_error
    assert live.info()["load_error"] == live.load_error
    assert live.maybe_reload() is False  # an immutable broken version is not retried on every poll
    with pytest.raises(ReloadFailedError):
        live.reload(force=True)
    assert live.related("demo-006", Q).payload["index_version"] == old


def test_broken_only_version_is_not_ready_with_the_reason(index_dir: Path, embedder) -> None:
    current = IndexDirectory(index_dir).current_path()
    (current / "articles.jsonl").write_text("truncated\n")
    live = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=embedder)
    assert live.load() is None
    assert not live.ready and "failed to load" in live.reason


def test_reads_during_upserts_and_reloads_never_fail(live: LiveIndex, index_dir: Path) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        i = 0
        while not stop.is_set():
            try:
                live.related(f"demo-{i % 140 + 1:03d}", RelatedOptions(k=6, section="world" if i % 3 else None))
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
            i += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(8):
            live.upsert(_article(f"burst/{n}", published_at="2026-08-10T10:00:00Z"))
        publish_copy(index_dir)
        live.reload()
        for n in range(4):
            live.delete(f"burst/{n}")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert "burst/7" in live.snapshot.recommender and "burst/0" not in live.snapshot.recommender


# -- listing and info ----------------------------------------------------------------------------
def test_search_and_info(live: LiveIndex) -> None:
    found = live.search("comet okafor", limit=3).payload
    assert found["total"] >= 3 and len(found["items"]) == 3
    assert all("okafor" in i["title"].lower() for i in found["items"])
    dates = [i["published_at"] for i in found["items"]]
    assert dates == sorted(dates, reverse=True)
    assert live.search("", section="world").payload["total"] > 0
    assert live.search("zzzz-nothing").payload["total"] == 0
    info = live.info()
    assert info["ready"] and info["article_count"] == 140 and info["model"] == "all-MiniLM-L6-v2"
    assert info["built_at"] and info["pending_changes"] == 0


def test_response_cache_is_a_bounded_lru() -> None:
    cache = ResponseCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.hits == 3 and cache.misses == 1 and cache.hit_ratio == 0.75
    off = ResponseCache(0)
    off.put("a", 1)
    assert off.get("a") is None


def test_with_auto_live_writes_embed_with_the_versions_backend(index_dir: Path) -> None:
    """The demo index was built with float32: a service set to auto embeds its live writes with float32 too, so
    one index never holds vectors of two backends (whatever auto would pick on this machine)."""
    live = LiveIndex(Settings(index_dir=index_dir, poll_interval=0, embedding_backend="auto"))
    live.load()
    assert live.snapshot.recommender.manifest.extra["embedding"]["backend"] == "float32"
    assert live.embedder().backend == "float32"
