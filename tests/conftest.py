"""Shared fixtures: the real bundled model (loaded once) and a real demo index (built once per session).

Where a test lives says what kind it is: ``tests/integration/`` (real server processes, schemathesis),
``tests/chaos/`` (kill -9, full disks, a soak) and ``tests/browser/`` (headless Chromium) get the marker of their
folder, so the README's ``pytest`` runs only the fast suite and CI runs the rest after it (``.ci/run``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import DEMO_CORPUS
from tests.support.server import ServerProcess

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite compares against vectors of the float32 `embedder` fixture and must not spend the first CLI build
# measuring backends (the `auto` default): tests/test_backends.py exercises auto and every backend explicitly.
os.environ.setdefault("RECOMMENDER_EMBEDDING_BACKEND", "float32")

_FOLDER_MARKERS = ("integration", "chaos", "browser")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        parts = Path(str(item.fspath)).relative_to(root).parts
        if parts and parts[0] in _FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
            if parts[0] == "chaos" and item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(900))  # kill loops and soaks run for minutes by design


@pytest.fixture(scope="session")
def embedder():
    """The process's shared model (what a build or a CLI command in this process loads too): loaded once."""
    from recommender.model_cache import shared_embedder

    return shared_embedder()


@pytest.fixture(scope="session")
def demo_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory, embedder) -> Path:
    """A published demo index. Read-only for tests: copy it (or build your own) before changing it."""
    from recommender.build import build_index
    from recommender.settings import Settings

    root = tmp_path_factory.mktemp("demo-index")
    build_index([DEMO_CORPUS], Settings(index_dir=root), embedder=embedder, progress=False)
    return root


@pytest.fixture(scope="session")
def demo_recommender(demo_index, embedder):
    from recommender.engine import Recommender

    return Recommender.open(demo_index, embedder=embedder)


@pytest.fixture(scope="session")
def unfloored_recommender(demo_index, embedder):
    """The demo index without the relevance floor: for tests of mechanics (filters, widening, k) that need boxes
    filled with whatever is eligible, related or not."""
    from recommender.engine import Recommender
    from recommender.ranking import RankingConfig

    return Recommender.open(demo_index, embedder=embedder, config=RankingConfig(min_relevance=0.0))


# Property tests explore new examples locally; in CI they replay a fixed sequence so a run is reproducible.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")


@pytest.fixture
def servers(tmp_path: Path):
    """``servers(index_dir, **settings)`` starts a ``python -m service`` process; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(index_dir: Path, **settings) -> ServerProcess:
        server = ServerProcess(index_dir, tmp_path / f"server-{len(started)}.log", **settings)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
