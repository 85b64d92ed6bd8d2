"""Shared fixtures: the real bundled model (loaded once) and a real demo index (built once per session)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEMO_CORPUS = REPO / "recommender" / "data" / "demo_articles.jsonl"


def shared_dataset(name: str) -> Path:
    """A dataset from ../shared; in CI a missing one is a failure, elsewhere a skip with the reason."""
    path = SHARED / "datasets" / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared dataset missing: {path}")
        pytest.skip(f"shared dataset not present: {path}")
    return path


def write_jsonl(path: Path, records: Iterable[Any]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write((record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)) + "\n")
    return path


@pytest.fixture(scope="session")
def embedder():
    from recommender.embedding import Embedder

    return Embedder()


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


# Property tests explore new examples locally; in CI they replay a fixed sequence so a run is reproducible.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
