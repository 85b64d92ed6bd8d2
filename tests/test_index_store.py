"""The FAISS store against the brute-force NumPy oracle, with ties, edges and save/load round trips."""

import json

import numpy as np
import pytest

from index import IndexSpec, Manifest, ManifestError, ManifestMismatchError, StoreError, VectorStore, brute_force_search


def _data(n=500, d=32, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return [f"id-{i}" for i in range(n)], v


def _same_up_to_ties(scores_a, pos_a, scores_b, pos_b):
    # Tied scores may swap places; compare the score sequences and the sets above the last tie.
    np.testing.assert_allclose(scores_a, scores_b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "hnsw_sq8", "ivf_sq8"])
def test_search_matches_oracle(kind):
    ids, v = _data()
    store = VectorStore.build(ids, v, IndexSpec(index_type=kind))
    assert store.index_type == kind and store.count == 500 and store.dimension == 32
    scores, pos = store.search_positions(v[:50], 10)
    ex_scores, ex_pos = brute_force_search(v, v[:50], 10)
    if kind == "flat":
        _same_up_to_ties(scores, pos, ex_scores, ex_pos)
        assert (pos[:, 0] == np.arange(50)).all()
    else:
        from index import recall_at_k

        assert recall_at_k(pos, ex_pos, 10) >= 0.9
        assert store.recall(k=10, sample=100) >= 0.9


def test_auto_picks_exact_below_threshold_and_hnsw_above():
    ids, v = _data(300)
    assert VectorStore.build(ids, v, IndexSpec(exact_threshold=1000)).index_type == "flat"
    assert VectorStore.build(ids, v, IndexSpec(exact_threshold=100)).index_type == "hnsw"


def test_invalid_index_type():
    with pytest.raises(
        ValueError, match="index_type must be one of auto, flat, hnsw, ivf, hnsw_sq8, ivf_sq8, got 'lsh'"
    ):
        IndexSpec(index_type="lsh")


def test_ties_and_k_larger_than_count():
    ids = ["a", "b", "c"]
    v = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    store = VectorStore.build(ids, v)
    results = store.search(np.array([1, 0], dtype=np.float32), 10)[0]
    assert [i for i, _ in results][:2] in (["a", "b"], ["b", "a"])
    assert len(results) == 3  # padded -1 positions are dropped
    scores, pos = store.search_positions(np.array([[1, 0]], np.float32), 5)
    assert list(pos[0, 3:]) == [-1, -1]
    ex_scores, ex_pos = brute_force_search(v, np.array([[1, 0]], np.float32), 5)
    assert list(ex_pos[0, 3:]) == [-1, -1]


def test_empty_store():
    store = VectorStore.build([], np.zeros((0, 4), np.float32))
    assert store.count == 0
    assert store.search(np.ones(4, np.float32), 3) == [[]]


def test_bad_inputs():
    ids, v = _data(10)
    with pytest.raises(StoreError, match="9 ids but 10 vectors"):
        VectorStore.build(ids[:9], v)
    with pytest.raises(StoreError, match="duplicate ids in the store"):
        VectorStore.build(["x"] * 10, v)
    store = VectorStore.build(ids, v)
    with pytest.raises(StoreError, match="query dimension 3 does not match the index \\(32\\)"):
        store.search(np.ones(3, np.float32), 2)
    with pytest.raises(ValueError, match="k must be positive"):
        store.search(v[0], 0)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "hnsw_sq8", "ivf", "ivf_sq8"])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, mmap, kind):
    ids, v = _data(2000)
    store = VectorStore.build(ids, v, IndexSpec(index_type=kind))
    files = store.save(tmp_path)
    loaded = VectorStore.load(tmp_path, index_type=kind, mmap=mmap)
    assert loaded.ids == ids and loaded.index_type == kind
    np.testing.assert_array_equal(loaded.search_positions(v[:5], 5)[1], store.search_positions(v[:5], 5)[1])
    np.testing.assert_array_equal(np.asarray(loaded.vector("id-3")), v[3])
    assert sorted(files) == ["ids.json", "vectors.faiss", "vectors.npy"]
    # Memory-mapped means the files back the memory (shared by every worker), not private copies.
    maps = open("/proc/self/maps", encoding="utf-8").read()
    assert (str(tmp_path / "vectors.faiss") in maps) is mmap
    assert (str(tmp_path / "vectors.npy") in maps) is mmap


def test_load_errors(tmp_path):
    with pytest.raises(StoreError, match="ids.json: missing"):
        VectorStore.load(tmp_path, index_type="flat")
    ids, v = _data(5)
    VectorStore.build(ids, v).save(tmp_path)
    (tmp_path / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(StoreError, match="cannot read the index"):
        VectorStore.load(tmp_path, index_type="flat")


def test_manifest_written_checked_and_verified(tmp_path):
    ids, v = _data(20)
    VectorStore.build(ids, v).save(tmp_path)
    m = Manifest(model="model-a", dimension=32, count=20, index_type="flat")
    for f in ("ids.json", "vectors.faiss", "vectors.npy"):
        m.record_file(tmp_path, f)
    m.write(tmp_path)
    back = Manifest.read(tmp_path)
    assert back == m
    back.check_compatible(model="model-a", dimension=32)
    with pytest.raises(ManifestMismatchError, match="index was built with model 'model-a' but 'model-b' is configured"):
        back.check_compatible(model="model-b")
    with pytest.raises(ManifestMismatchError, match="index has dimension 32 but the configured model produces 768"):
        back.check_compatible(dimension=768)
    back.verify_files(tmp_path, digests=True)
    with open(tmp_path / "vectors.npy", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(ManifestError, match="vectors.npy: 100 bytes, manifest says .* \\(truncated or replaced\\)"):
        back.verify_files(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "manifest missing"),
        ("{", "manifest unreadable"),
        ("[]", "manifest is not a JSON object"),
        (json.dumps({"model": "m"}), "manifest incomplete, missing dimension, count, index_type"),
        (
            json.dumps({"model": "m", "dimension": 1, "count": 1, "index_type": "flat", "format_version": 99}),
            "format version 99 is newer",
        ),
    ],
)
def test_bad_manifests(tmp_path, content, message):
    if content is not None:
        (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(ManifestError, match=message):
        Manifest.read(tmp_path)


def test_tune_widens_hnsw_search_until_the_recall_floor_and_the_file_keeps_it(tmp_path):
    ids, v = _data(2000)
    store = VectorStore.build(ids, v, IndexSpec(index_type="hnsw", hnsw_m=4, hnsw_ef_search=1))
    before = store.recall(k=10, sample=200)
    recall, params = store.tune(0.99, k=10, sample=200)
    assert before < 0.99 <= recall and params["efSearch"] > 1 and params["efSearch"] & (params["efSearch"] - 1) == 0
    store.save(tmp_path)
    assert VectorStore.load(tmp_path, index_type="hnsw").index.hnsw.efSearch == params["efSearch"]
    # A ceiling stops the widening: the caller sees the recall it got and the breadth it stopped at.
    capped = VectorStore.build(ids, v, IndexSpec(index_type="hnsw", hnsw_m=4, hnsw_ef_search=1))
    low, stop = capped.tune(0.999, k=10, sample=200, max_breadth=2)
    assert stop == {"efSearch": 2} and low < 0.999
    flat = VectorStore.build(ids, v, IndexSpec(index_type="flat"))
    assert flat.tune(0.99) == (1.0, {})
