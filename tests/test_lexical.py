"""The TF-IDF model: fitted on a corpus, saved without pickle, loaded (also memory-mapped) with the same scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.lexical import LEGACY_MATRIX_FILE, MATRIX_FILES, LexicalModel

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
    assert sorted(files) == sorted(["lexical.json", "lexical_idf.npy", *MATRIX_FILES.values()])
    loaded = LexicalModel.load(tmp_path, mmap=mmap)
    query = loaded.transform(["Concordia captain trial"])
    np.testing.assert_allclose(loaded.scores(query), model.scores(model.transform(["Concordia captain trial"])), rtol=1e-6)
    assert int(np.argmax(loaded.scores(query))) == 0
    assert loaded.top_terms(query, loaded.matrix_[[0]], n=2)[0] in {"concordia", "captain", "trial", "costa concordia"}
    rows = loaded.matrix_[[2, 3]]
    assert rows.shape == (2, model.matrix_.shape[1])
    maps = open("/proc/self/maps", encoding="utf-8").read()
    assert (str(tmp_path / MATRIX_FILES["data"]) in maps) is mmap


def test_versions_written_before_memory_mapping_still_load(tmp_path) -> None:
    """An index built by the previous release kept the matrix in one .npz; a new service must still serve it."""
    model = _fitted()
    model.save(tmp_path)
    for name in MATRIX_FILES.values():
        (tmp_path / name).unlink()
    legacy = json.loads((tmp_path / "lexical.json").read_text(encoding="utf-8"))
    legacy.pop("matrix_shape")
    (tmp_path / "lexical.json").write_text(json.dumps(legacy), encoding="utf-8")
    sp.save_npz(tmp_path / LEGACY_MATRIX_FILE, model.matrix_, compressed=False)
    loaded = LexicalModel.load(tmp_path, mmap=True)
    assert (loaded.matrix_ != model.matrix_).nnz == 0


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="LexicalModel is not fitted: call fit\\(\\) or load\\(\\) first"):
        LexicalModel().transform(["x"])
