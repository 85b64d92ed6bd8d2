"""The TF-IDF model: fitted on a corpus, saved without pickle, loaded (also memory-mapped) with the same scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.lexical import (
    LEGACY_MATRIX_FILE,
    MATRIX_FILES,
    TERM_MATRIX_FILES,
    LexicalModel,
    lexical_neighbors,
    lexical_recall,
    row_dots,
)

TEXTS = [
    "Costa Concordia captain goes on trial in Grosseto",
    "Costa Concordia salvage begins off Giglio island",
    "Comet probe Tessera sends images from orbit",
    "Tessera comet probe images show ice on the comet surface",
    "Harbour strike in Ostrava ends with a pay deal",
    "Ostrava harbour workers vote to end strike",
]


def _fitted() -> LexicalModel:
    return LexicalModel().fit(TEXTS)


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip_gives_the_same_scores(tmp_path, mmap) -> None:
    model = _fitted()
    files = model.save(tmp_path)
    assert sorted(files) == sorted(
        ["lexical.json", "lexical_idf.npy", *MATRIX_FILES.values(), *TERM_MATRIX_FILES.values()]
    )
    loaded = LexicalModel.load(tmp_path, mmap=mmap)
    query = loaded.transform(["Concordia captain trial"])
    np.testing.assert_allclose(
        loaded.scores(query), model.scores(model.transform(["Concordia captain trial"])), rtol=1e-6
    )
    assert int(np.argmax(loaded.scores(query))) == 0
    assert loaded.top_terms(query, loaded.matrix_[[0]], n=2)[0] in {"concordia", "captain", "trial", "costa concordia"}
    rows = loaded.matrix_[[2, 3]]
    assert rows.shape == (2, model.matrix_.shape[1])
    # Scoring a new text reads the term-major copy (the postings of its terms); it agrees with the row-major one.
    every_row = loaded.scores(query, rows=np.arange(len(TEXTS)))
    np.testing.assert_allclose(loaded.scores(query), every_row, rtol=1e-6)
    assert sorted(loaded.top(query, 2).tolist()) == sorted(np.argsort(-every_row)[:2].tolist())
    assert set(loaded.top(query, 100).tolist()) == set(
        np.flatnonzero(every_row > 0).tolist()
    )  # only documents sharing a term
    assert loaded.top(loaded.transform(["zzz unknown words"]), 5).tolist() == []
    maps = open("/proc/self/maps", encoding="utf-8").read()
    assert (str(tmp_path / MATRIX_FILES["data"]) in maps) is mmap
    assert (str(tmp_path / TERM_MATRIX_FILES["data"]) in maps) is mmap


def test_versions_written_before_memory_mapping_still_load(tmp_path) -> None:
    """An index built by the previous release kept the matrix in one .npz; a new service must still serve it."""
    model = _fitted()
    model.save(tmp_path)
    for name in (*MATRIX_FILES.values(), *TERM_MATRIX_FILES.values()):
        (tmp_path / name).unlink()
    legacy = json.loads((tmp_path / "lexical.json").read_text(encoding="utf-8"))
    legacy.pop("matrix_shape")
    legacy.pop("term_matrix")
    (tmp_path / "lexical.json").write_text(json.dumps(legacy), encoding="utf-8")
    sp.save_npz(tmp_path / LEGACY_MATRIX_FILE, model.matrix_, compressed=False)
    loaded = LexicalModel.load(tmp_path, mmap=True)
    assert (loaded.matrix_ != model.matrix_).nnz == 0
    query = loaded.transform(["Concordia captain trial"])
    np.testing.assert_allclose(loaded.scores(query), model.scores(query), rtol=1e-6)  # scored row by row
    assert sorted(loaded.top(query, 2).tolist()) == sorted(model.top(query, 2).tolist())
    assert loaded._by_term is None  # not derived: that would double the matrix in every worker


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="LexicalModel is not fitted: call fit\\(\\) or load\\(\\) first"):
        LexicalModel().transform(["x"])


def _corpus_matrix(n: int = 400) -> sp.csr_matrix:
    rng = np.random.default_rng(5)
    names = [f"name{i}" for i in range(60)]
    common = ["market", "talks", "report", "said", "week", "government", "price", "deal"]
    texts = [" ".join(rng.choice(names, 4).tolist() + rng.choice(common, 6).tolist()) for _ in range(n)]
    return LexicalModel().fit(texts).matrix_


def test_neighbours_match_a_brute_force_oracle_and_never_self() -> None:
    matrix = _corpus_matrix()
    got = lexical_neighbors(matrix, 10, chunk=64)
    dense = (matrix @ matrix.T).toarray()
    for i, row in enumerate(got):
        assert i not in row and (row >= 0).all()
        scores = dense[i, row]
        assert (np.diff(scores) <= 1e-6).all()  # best first
        # Same scores as the oracle's top 10 (ties may swap which document holds a score).
        oracle = sorted((dense[i, j] for j in _oracle_row(dense, i, 10)), reverse=True)
        np.testing.assert_allclose(sorted(scores, reverse=True), oracle, rtol=1e-5)
    assert lexical_recall(matrix, got, k=10, sample=100) == 1.0


def _oracle_row(dense: np.ndarray, i: int, k: int) -> list[int]:
    row = dense[i].copy()
    row[i] = -np.inf
    return np.argsort(-row, kind="stable")[:k].tolist()


def test_capping_common_terms_is_measured_not_hidden() -> None:
    matrix = _corpus_matrix()
    # Names sit in 15-42 of the 400 documents: a cap at 30 drops the commonest from the query side.
    capped = lexical_neighbors(matrix, 10, max_postings=30)
    recall = lexical_recall(matrix, capped, k=10, sample=200)
    assert 0.3 < recall < 0.9  # the rarer names still find neighbours; what the cap loses shows in the number
    assert lexical_recall(matrix, lexical_neighbors(matrix, 10), k=10, sample=200) == 1.0


def test_neighbours_of_some_rows_and_small_corpora() -> None:
    matrix = _corpus_matrix(30)
    some = lexical_neighbors(matrix, 5, rows=np.array([3, 7]))
    full = lexical_neighbors(matrix, 5)
    np.testing.assert_array_equal(some, full[[3, 7]])
    two = LexicalModel().fit(["alpha beta", "alpha gamma"]).matrix_
    assert lexical_neighbors(two, 5).tolist() == [[1, -1, -1, -1, -1], [0, -1, -1, -1, -1]]
    assert lexical_neighbors(two[:0], 5).shape == (0, 5)


def test_row_dots_equals_the_sparse_product_including_empty_rows() -> None:
    model = _fitted()
    rows = model.matrix_
    queries = sp.vstack([model.transform(["Concordia trial", "nothing shared zzz"]), rows[[3]]]).tocsr()
    got = row_dots(rows, queries)
    assert got.shape == (len(TEXTS), 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, (rows @ queries.T).toarray(), rtol=1e-6, atol=1e-7)
    assert not got[:, 1].any()  # a query sharing no term scores 0 everywhere
    assert row_dots(rows, queries[:0]).shape == (len(TEXTS), 0)


def test_top_terms_many_names_the_shared_terms_by_contribution() -> None:
    model = _fitted()
    query = model.transform(["Costa Concordia captain trial"])
    many = model.top_terms_many(query, model.matrix_[[0, 1, 2]], n=2)
    # Row by row it agrees with the pairwise form; an article sharing no term gets no terms.
    assert many[:2] == [model.top_terms(query, model.matrix_[[i]], n=2) for i in (0, 1)]
    assert many[2] == []
    words = {"costa", "concordia", "captain", "trial"}
    assert len(many[0]) == 2 and all(set(term.split()) <= words for term in many[0])


def test_neighbours_do_not_depend_on_threads_chunks_or_a_memory_mapped_index(tmp_path) -> None:
    model = LexicalModel().fit(
        [" ".join(row) for row in np.random.default_rng(3).choice([f"w{i}" for i in range(40)], (300, 8))]
    )
    one = lexical_neighbors(model.matrix_, 7, threads=1, chunk=300)
    np.testing.assert_array_equal(lexical_neighbors(model.matrix_, 7, threads=2, chunk=37), one)
    model.save(tmp_path)
    mapped = LexicalModel.load(tmp_path, mmap=True)  # read-only arrays, as a served version holds them
    np.testing.assert_array_equal(lexical_neighbors(mapped.matrix_, 7, by_term=mapped.by_term), one)
    wide = model.by_term.copy()  # 64-bit postings (a corpus past 2**31 nonzeros) beside 32-bit query rows
    wide.indices, wide.indptr = wide.indices.astype(np.int64), wide.indptr.astype(np.int64)
    np.testing.assert_array_equal(lexical_neighbors(model.matrix_, 7, by_term=wide), one)


def test_a_row_tied_with_more_copies_than_k_still_never_lists_itself() -> None:
    matrix = LexicalModel().fit(["same words here"] * 6 + ["other text entirely", "more other text"]).matrix_
    got = lexical_neighbors(matrix, 3)
    for i in range(6):
        assert i not in got[i] and set(got[i]) <= set(range(6)) and (got[i] >= 0).all()
    assert (got[6] == 7).sum() == 1 and (got[6][1:] == -1).all()  # shares only "text"... with row 7
