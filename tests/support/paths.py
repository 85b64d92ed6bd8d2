"""Where the tests' data lives: the repository, the bundled demo corpus, and the shared datasets beside the clone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import pytest

__all__ = ["DEMO_CORPUS", "REPO", "SHARED", "shared_dataset", "subprocess_env", "write_jsonl"]

REPO = Path(__file__).resolve().parents[2]
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


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child ``python -m recommender|service``: this checkout importable, no
    RECOMMENDER_* settings leaking in from the caller's shell, offline, one tokenizer thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    # float32: the index fixtures are float32, and auto would spend the first embedding measuring backends
    env.update(
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        RECOMMENDER_EMBEDDING_BACKEND="float32",
    )
    env.update(extra)
    return env
