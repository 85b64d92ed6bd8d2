"""`--engine ray`: Ray Data batch inference in local mode with two workers gives the local engine's vectors."""

import numpy as np
import pytest

from index import IndexDirectory
from recommender.build import build_index
from recommender.settings import Settings
from tests.support.paths import DEMO_CORPUS

pytestmark = pytest.mark.slow


def test_ray_engine_builds_the_same_index(tmp_path, embedder):
    pytest.importorskip("ray", reason='needs the distributed extra: pip install ".[distributed]"')
    local = build_index([DEMO_CORPUS], Settings(index_dir=tmp_path / "local"), embedder=embedder, progress=False)
    ray_settings = Settings(index_dir=tmp_path / "ray", engine="ray", ray_workers=2)
    distributed = build_index([DEMO_CORPUS], ray_settings, embedder=embedder, progress=False)
    assert distributed.counts["embedded"] == local.counts["embedded"] == 140
    a = np.load(IndexDirectory(tmp_path / "local").current_path() / "vectors.npy")
    b = np.load(IndexDirectory(tmp_path / "ray").current_path() / "vectors.npy")
    cosine = np.sum(a * b, axis=1)
    assert cosine.min() >= 0.999
