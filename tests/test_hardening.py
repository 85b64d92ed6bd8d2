"""Regression tests for the hostile-input and fault probe (issue 16), in process: each finding of the probe has a
test here (or, where real processes or sockets matter, in tests/integration/test_restart_and_slow_clients.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from index import IndexDirectory
from recommender.article import ID_PATTERN, Article, parse_article
from recommender.changelog import ChangeLog
from recommender.engine import Recommender
from recommender.options import RelatedOptions
from recommender.serving import LiveIndex
from recommender.settings import Settings
from service import create_app
from tests.support.paths import REPO, subprocess_env
from tests.support.server import ADMIN_TOKEN, admin_headers, copy_index


@pytest.fixture
def index_dir(demo_index: Path, tmp_path: Path) -> Path:
    return copy_index(demo_index, tmp_path / "index")


def _live(index_dir: Path, embedder) -> LiveIndex:
    live = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=embedder)
    live.load()
    assert live.ready
    return live


def _article(article_id: str, title: str = "Tessera probe sends first images from comet Okafor-Lind orbit") -> Article:
    return parse_article(
        {"id": article_id, "title": title, "body": "The Tessera spacecraft sent images.", "section": "science"}
    )


class _NoModel:
    """An embedder that must not be called: a restart replays the log from the vectors it holds."""

    def __init__(self, real) -> None:
        self.model_id, self.dimension, self.calls = real.model_id, real.dimension, 0

    def encode(self, texts, **kwargs):
        self.calls += 1
        raise AssertionError(f"the model was called for {len(texts)} texts")


# -- 1. a restart replays live changes without the model ---------------------------------------------------
def test_a_restart_replays_the_log_without_calling_the_model(index_dir: Path, embedder) -> None:
    live = _live(index_dir, embedder)
    for n in range(5):
        live.upsert(_article(f"live/{n}", title=f"Tessera probe report number {n} from comet orbit"))
    live.delete("live/0")
    before = {
        i: live.snapshot.recommender.catalog.vectors([live.snapshot.recommender.catalog.position(i)])[0]
        for i in ("live/1", "live/4")
    }
    restarted = LiveIndex(Settings(index_dir=index_dir, poll_interval=0), embedder=_NoModel(embedder))
    restarted.load()
    rec = restarted.snapshot.recommender
    assert restarted.ready and restarted.snapshot.pending == 6 and "live/0" not in rec and "live/4" in rec
    for article_id, vector in before.items():
        np.testing.assert_array_equal(rec.catalog.vectors([rec.catalog.position(article_id)])[0], vector)
    assert restarted.related("live/1", RelatedOptions()).payload["items"]


def test_log_entries_of_another_embedding_are_embedded_again(index_dir: Path, embedder, monkeypatch) -> None:
    log = ChangeLog(index_dir)
    log.append_upsert(
        _article("old/1"),
        vector=np.ones(embedder.dimension, np.float32),
        signature=np.ones(64, np.uint32),
        embedding="another-model",
    )
    log.append_upsert(_article("old/2"))  # written by a release that kept no vectors
    calls: list[int] = []
    real = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts, **kw: calls.append(len(texts)) or real(texts, **kw))
    live = _live(index_dir, embedder)
    assert calls == [2] and {"old/1", "old/2"} <= {a.id for a in live.snapshot.recommender.catalog.articles}


# -- 2. damaged versions never answer silently -------------------------------------------------------------
def _cli_related(index_dir: Path, *env: tuple[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recommender", "related", "demo-006", "--index-dir", str(index_dir)],
        capture_output=True, text=True, env=subprocess_env(**dict(env)), cwd=REPO, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["vectors.npy", "vectors.faiss", "signatures.npy", "lexical_indices.npy"])
def test_cli_related_refuses_a_version_with_flipped_bytes(index_dir: Path, name: str) -> None:
    path = IndexDirectory(index_dir).current_path() / name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))
    result = _cli_related(index_dir)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: {path}: content digest does not match the manifest (corrupted)"


def test_damage_the_digests_cannot_see_is_caught_on_the_request_path(index_dir: Path) -> None:
    """With digest checks turned off (RECOMMENDER_VERIFY_DIGESTS=0), impossible values still never reach a reader."""
    version = IndexDirectory(index_dir).current_path()
    vectors = np.load(version / "vectors.npy")
    np.save(version / "vectors.npy", np.random.default_rng(0).normal(size=vectors.shape).astype(np.float32) * 5)
    result = _cli_related(index_dir, ("RECOMMENDER_VERIFY_DIGESTS", "0"))
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(
        r"error: .*: vectors give a cosine of [\d.e+-]+, outside \[-1, 1\]; the version's files are damaged: roll back or rebuild\n",
        result.stderr,
    )
    np.save(version / "vectors.npy", vectors)
    neighbors = np.load(version / "neighbors_semantic.npy")
    neighbors[:] = 10_000_000
    np.save(version / "neighbors_semantic.npy", neighbors)
    result = _cli_related(index_dir, ("RECOMMENDER_VERIFY_DIGESTS", "0"))
    assert result.returncode == 2 and "a precomputed candidate list points past the last article" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_library_verifies_digests_by_default(index_dir: Path) -> None:
    from index import ManifestError

    path = IndexDirectory(index_dir).current_path() / "signatures.npy"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="signatures.npy: content digest does not match"):
        Recommender.open(index_dir)
    assert Recommender.open(index_dir, verify_digests=False)  # an explicit choice still loads it


# -- 3. unsafe URLs and markup never reach the public ----------------------------------------------------------
@pytest.fixture
def client(index_dir: Path, embedder):
    app = create_app(Settings(index_dir=index_dir, admin_token=ADMIN_TOKEN, poll_interval=0), embedder=embedder)
    with TestClient(app) as c:
        assert app.state.live.wait_loaded(60)
        yield c


def test_only_http_urls_are_accepted(client: TestClient) -> None:
    for url in (
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>x</script>",
        "vbscript:x",
        "//evil.test/a",
    ):
        r = client.put("/v1/articles/bad-url", json={"title": "x", "url": url}, headers=admin_headers())
        assert r.status_code == 422 and r.json()["error"]["fields"] == ["body.url"], (url, r.text)
    assert (
        client.put(
            "/v1/articles/good-url", json={"title": "x", "url": "https://news.test/a"}, headers=admin_headers()
        ).status_code
        == 201
    )


def test_a_stored_unsafe_url_is_never_served(index_dir: Path, embedder) -> None:
    live = _live(index_dir, embedder)
    rec = live.snapshot.recommender
    old = Article(
        id="legacy",
        title="Tessera probe sends first images from comet Okafor-Lind",
        body="Images.",
        url="javascript:alert(1)",
    )
    with live.snapshot.lock.write():  # as a version built by an older release would hold it
        rec.add_prepared([old], *rec.prepare([old]))
    assert live.article("legacy")[0].url == "javascript:alert(1)"  # stored as the old release left it
    related = live.related("demo-041", RelatedOptions(k=50)).payload["items"]
    assert [item["url"] for item in related if item["id"] == "legacy"] == [None]
    assert all(item["url"] is None or item["url"].startswith("https://") for item in related)
    assert live.search("legacy").payload["items"][0]["url"] is None


def test_security_headers(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert client.get("/static/app.js").headers["content-security-policy"] == policy
    api = client.get("/v1/articles/demo-006/related")
    assert api.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in api.headers
    assert client.get("/v1/nope").headers["x-content-type-options"] == "nosniff"


# -- 4. lone surrogates are a 422 naming the field, never a 500 ----------------------------------------------
@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"title": "x", "tags": ["ok", "\\udfff"]}', "tags"),
        (b'{"title": "x", "authors": ["\\ud800"]}', "authors"),
        (b'{"title": "x", "story": "\\udfff"}', "story"),
        (b'{"title": "x", "meta": {"nested": ["\\udc00"]}}', "meta.nested"),
    ],
)
def test_lone_surrogates_on_put_are_a_422(client: TestClient, body: bytes, field: str) -> None:
    r = client.put(
        "/v1/articles/surrogate", content=body, headers={**admin_headers(), "content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {
        "code": "invalid_request",
        "message": f"{field}: contains a lone surrogate (not valid Unicode)",
        "fields": [field],
    }
    assert client.get("/v1/articles/surrogate").status_code == 404


def test_a_lone_surrogate_in_a_declared_string_field_is_refused_by_its_type(client: TestClient) -> None:
    body = b'{"title": "x\\udfff"}'
    r = client.put(
        "/v1/articles/surrogate", content=body, headers={**admin_headers(), "content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["error"]["fields"] == ["body.title"]


# -- 5. damage to the change log is visible ------------------------------------------------------------------
def test_damage_to_the_log_is_reported_and_kept_aside(index_dir: Path, embedder) -> None:
    log = ChangeLog(index_dir)
    log.append_upsert(_article("fine/1"))
    with open(log.path, "ab") as fh:
        fh.write(b'{"seq": 2, "op": "upsert", "id": "x", "article": {"id": "x"}}\n')  # unreadable: no title
        fh.write(b'{"seq": 3, "op": "ups')  # torn: a writer killed mid-append
    app = create_app(Settings(index_dir=index_dir, admin_token=ADMIN_TOKEN, poll_interval=0), embedder=embedder)
    with TestClient(app) as c:
        assert app.state.live.wait_loaded(60)
        assert c.get("/readyz").json()["wal_errors"] == 2
        info = c.get("/v1/index").json()
        assert info["wal_errors"] == 2 and [d["line"] for d in info["wal_damage"]] == [2, 3]
        assert "title: missing or empty" in info["wal_damage"][0]["reason"]
        assert "unfinished last entry" in info["wal_damage"][1]["reason"]
        assert "recommender_wal_errors 2.0" in c.get("/metrics").text
        kept = sorted((index_dir / "live" / "damaged").iterdir())
        assert [p.read_bytes() for p in kept] == [
            b'{"seq": 2, "op": "upsert", "id": "x", "article": {"id": "x"}}\n',
            b'{"seq": 3, "op": "ups',
        ]
        # The next write cuts the torn tail (already kept aside) and lands whole.
        assert (
            c.put("/v1/articles/after", json={"title": "After the damage"}, headers=admin_headers()).status_code == 201
        )
        assert c.get("/v1/index").json()["wal_errors"] == 2
    assert [e.article_id for e in ChangeLog(index_dir).entries()] == ["fine/1", "after"]


# -- 6. the admin token --------------------------------------------------------------------------------------
def test_admin_token_whitespace_is_stripped_with_a_warning(caplog) -> None:
    with caplog.at_level("WARNING"):
        settings = Settings(admin_token="s3cret\n")
    assert settings.admin_token.get_secret_value() == "s3cret"
    assert "RECOMMENDER_ADMIN_TOKEN had surrounding whitespace; it was stripped" in caplog.text


@pytest.mark.parametrize("command", [["-m", "service"], ["-m", "recommender", "serve"]])
def test_a_token_that_cannot_be_sent_in_a_header_is_refused_at_startup(tmp_path: Path, command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, cwd=REPO, check=False,
        env=subprocess_env(RECOMMENDER_ADMIN_TOKEN="pässword", RECOMMENDER_INDEX_DIR=str(tmp_path)),
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: RECOMMENDER_ADMIN_TOKEN: must be printable ASCII without spaces (it is sent in an HTTP header)"
    )
    assert "pässword" not in result.stderr + result.stdout


# -- 7. ids --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sent, code",
    [("a%1B%5B31mred", "U+001B"), ("a%C2%85", "U+0085"), ("txt%E2%80%AEgnp", "U+202E"), ("a%E2%81%A6b", "U+2066")],
)
def test_ids_with_controls_or_bidi_overrides_are_refused(client: TestClient, sent: str, code: str) -> None:
    r = client.put(f"/v1/articles/{sent}", json={"title": "x"}, headers=admin_headers())
    assert r.status_code == 422 and r.json()["error"]["fields"] == ["path.article_id"], r.text


def test_the_documented_id_pattern_is_the_one_the_route_applies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    put = schema["paths"]["/v1/articles/{article_id}"]["put"]
    documented = next(p for p in put["parameters"] if p["name"] == "article_id")["schema"]["pattern"]
    assert documented == ID_PATTERN
    for value, ok in (("a", True), ("a\x85", False), ("a\ufeff", False), (" a", False), ("a b", True), ("x/y", True)):
        assert bool(re.match(documented, value)) is ok, repr(value)


def test_error_messages_echo_a_bounded_prefix_of_an_id(client: TestClient) -> None:
    long_id = "x" * 5000
    message = client.get(f"/v1/articles/{long_id}/related").json()["error"]["message"]
    assert len(message) < 200 and message.endswith("... (5000 characters)")


# -- 8. drafts ---------------------------------------------------------------------------------------------------
def test_a_huge_draft_reads_only_the_first_part_of_its_text(demo_recommender) -> None:
    from recommender.engine import DRAFT_TEXT_LIMIT

    body = ("Ceasefire talks in Lisgard resumed on Monday. " * 20_000)[:600_000]
    huge = parse_article({"id": "d", "title": "Ceasefire talks resume in Lisgard", "body": body})
    cut = parse_article({"id": "d", "title": "Ceasefire talks resume in Lisgard", "body": body[:DRAFT_TEXT_LIMIT]})
    assert [r.article.id for r in demo_recommender.related_to_article(huge, 6)] == [
        r.article.id for r in demo_recommender.related_to_article(cut, 6)
    ]


def test_drafts_share_the_compute_limiter_with_related_by_id(client: TestClient, monkeypatch) -> None:
    import anyio

    limiter = client.app.state.compute_limiter = anyio.CapacityLimiter(1)
    live = client.app.state.live
    real = live.related_to_draft
    borrowed: list[int] = []
    monkeypatch.setattr(
        live, "related_to_draft", lambda *a, **kw: borrowed.append(limiter.borrowed_tokens) or real(*a, **kw)
    )
    assert client.post("/v1/related", json={"title": "Ceasefire talks resume in Lisgard"}).status_code == 200
    assert borrowed == [1]  # it ran holding the one token related-by-id also takes
