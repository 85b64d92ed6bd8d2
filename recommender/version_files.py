"""What files a version has: the one module that writes them (the build) and reads them back (the service, the
CLI, evaluation).

``index/`` owns the files of the vector store (FAISS index, vectors, ids) and the manifest; ``LexicalModel`` owns
its matrix files. This module owns the rest and how they fit together: the articles (JSON lines plus Arrow columns),
the MinHash signatures, the precomputed candidate lists and the build report.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from index import Manifest, ManifestError, StoreError, VectorStore, atomic_save_npy, atomic_write_json, atomic_writer

from .article import Article
from .article_table import ArticleTable, read_article_hashes, write_article_table
from .editorial import Editorial, read_editorial
from .lexical import LexicalModel
from .urls import DEFAULT_TRACKING_PARAMS

__all__ = [
    "ARTICLES_FILE",
    "COLUMNS_FILE",
    "EDITORIAL_FILE",
    "NEIGHBORS_FILES",
    "REPORT_FILE",
    "SIGNATURES_FILE",
    "LoadedVersion",
    "Reusable",
    "read_build_report",
    "read_reusable",
    "read_version",
    "tracking_of",
    "write_version",
]

ARTICLES_FILE = "articles.jsonl"
EDITORIAL_FILE = "editorial.json"
COLUMNS_FILE = "articles.arrow"
SIGNATURES_FILE = "signatures.npy"
NEIGHBORS_FILES = {"semantic": "neighbors_semantic.npy", "lexical": "neighbors_lexical.npy"}
REPORT_FILE = "build_report.json"


def write_version(
    staged: Path,
    *,
    store: VectorStore,
    lexical: LexicalModel,
    articles: Sequence[Article],
    hashes: Sequence[str],
    signatures: np.ndarray,
    neighbors: dict[str, np.ndarray],
    tracking: Sequence[str] = DEFAULT_TRACKING_PARAMS,
    editorial: Editorial | None = None,
) -> list[str]:
    """Write every data file of a version into ``staged``; returns their names (the manifest records each).
    ``tracking``: the query parameters URL keys leave out (recorded in the manifest by the build: lookups in this
    version normalise URLs the same way)."""
    files = store.save(staged)
    files += lexical.save(staged)
    with atomic_writer(staged / ARTICLES_FILE) as fh, atomic_writer(staged / COLUMNS_FILE) as columns:
        write_article_table(fh, columns, articles, hashes, tracking)
    files += [ARTICLES_FILE, COLUMNS_FILE]
    atomic_save_npy(staged / SIGNATURES_FILE, signatures)
    files.append(SIGNATURES_FILE)
    for kind, name in NEIGHBORS_FILES.items():
        atomic_save_npy(staged / name, neighbors[kind])
        files.append(name)
    atomic_write_json(staged / EDITORIAL_FILE, (editorial or Editorial()).to_dict())
    files.append(EDITORIAL_FILE)
    return files


def tracking_of(manifest: Manifest) -> tuple[str, ...]:
    """The tracking parameters a version's URL keys were made without."""
    saved = (manifest.extra.get("urls") or {}).get("tracking_params")
    return tuple(saved) if isinstance(saved, list) else DEFAULT_TRACKING_PARAMS


@dataclass
class LoadedVersion:
    """A version's files, loaded (``mmap``: mapped read-only and shared between worker processes)."""

    path: Path
    manifest: Manifest
    store: VectorStore
    articles: ArticleTable
    signatures: np.ndarray
    lexical: LexicalModel
    neighbors: dict[str, np.ndarray]
    editorial: Editorial


def read_version(path: Path, *, mmap: bool = False, verify_digests: bool = False) -> LoadedVersion:
    """Load one version folder; a damaged or inconsistent version raises ManifestError or StoreError."""
    path = Path(path)
    manifest = Manifest.read(path)
    manifest.verify_files(path, digests=verify_digests)
    mode = "r" if mmap else None
    try:
        store = VectorStore.load(path, index_type=manifest.index_type, mmap=mmap)
        columns = path / COLUMNS_FILE if COLUMNS_FILE in manifest.files else None
        articles = ArticleTable.open(path / ARTICLES_FILE, columns, tracking=tracking_of(manifest))
        signatures = np.load(path / SIGNATURES_FILE, mmap_mode=mode)
        lexical = LexicalModel.load(path, mmap=mmap)
        neighbors = {kind: np.load(path / name, mmap_mode=mode) for kind, name in NEIGHBORS_FILES.items()}
        editorial = read_editorial(path / EDITORIAL_FILE) if EDITORIAL_FILE in manifest.files else Editorial()
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        # Damaged files fail in many ways (a bad CRC in the TF-IDF matrix is a BadZipFile): all mean the same.
        raise ManifestError(f"{path}: version unreadable: {exc}") from None
    if articles.ids != store.ids:
        raise StoreError(f"{path}: articles and vectors are out of step")
    articles.ids = store.ids  # one list of id strings for both, not two
    return LoadedVersion(path, manifest, store, articles, signatures, lexical, neighbors, editorial)


@dataclass
class Reusable:
    """What an incremental build can take from the previous version: content hashes by position, and the
    vectors and signatures made from that content (None where they cannot be reused)."""

    ids: list[str]
    hashes: list[str]
    vectors: np.ndarray | None
    signatures: np.ndarray | None


def read_reusable(
    path: Path, manifest: Manifest, *, embedding: dict[str, Any] | None, signature_scheme: str
) -> Reusable:
    """``embedding``: the new build's embedding key; vectors are reused only when the previous version's matches
    (``None`` = re-embed everything). Signatures are reused when made by the same scheme."""
    ids, hashes = read_article_hashes(path / ARTICLES_FILE)
    signatures = (
        np.load(path / SIGNATURES_FILE, mmap_mode="r")
        if manifest.extra.get("signature_scheme") == signature_scheme
        else None
    )
    vectors = (
        VectorStore.load_vectors(path)
        if embedding is not None and manifest.extra.get("embedding") == embedding
        else None
    )
    return Reusable(ids, hashes, vectors, signatures)


def read_build_report(path: Path) -> dict[str, Any] | None:
    """The build report saved in a version folder, or None (versions can be copied in without one)."""
    try:
        return json.loads((Path(path) / REPORT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
