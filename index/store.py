"""The vector store: stable string ids over a FAISS inner-product index, with save and load."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from .errors import StoreError
from .exact import recall_at_k
from .persist import atomic_save_npy, atomic_write_bytes, atomic_writer

__all__ = ["VectorStore", "IndexSpec", "INDEX_TYPES", "measure_recall", "tune_recall"]

logger = logging.getLogger(__name__)

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf", "hnsw_sq8", "ivf_sq8")
INDEX_FILE = "vectors.faiss"
IDS_FILE = "ids.json"
VECTORS_FILE = "vectors.npy"


@dataclass(frozen=True)
class IndexSpec:
    """How to index. ``auto`` is exact up to ``exact_threshold`` vectors, HNSW above (no training, good recall)."""

    index_type: str = "auto"
    exact_threshold: int = 200_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_nprobe: int = 16

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {', '.join(INDEX_TYPES)}, got {self.index_type!r}")

    def resolve(self, count: int) -> str:
        if self.index_type != "auto":
            return self.index_type
        return "flat" if count <= self.exact_threshold else "hnsw"


def _make_index(kind: str, dim: int, spec: IndexSpec, vectors: np.ndarray) -> faiss.Index:
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind in ("hnsw", "hnsw_sq8"):
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, spec.hnsw_m, ip)
        else:
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, spec.hnsw_m, ip)
        index.hnsw.efConstruction = spec.hnsw_ef_construction
        index.hnsw.efSearch = spec.hnsw_ef_search
        return index
    if kind in ("ivf", "ivf_sq8"):
        # sqrt(n) lists is the usual rule of thumb; at least 39 training points per list keep k-means sane.
        nlist = max(1, min(int(np.sqrt(len(vectors))), len(vectors) // 39))
        quantizer = faiss.IndexFlatIP(dim)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, ip)
        else:
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, ip)
        index.nprobe = min(spec.ivf_nprobe, nlist)
        return index
    raise ValueError(f"index type must be one of {', '.join(INDEX_TYPES)}, got {kind!r}")


def _mmap_flags(index_type: str) -> int:
    """IO_FLAG_MMAP maps IVF inverted lists; IO_FLAG_MMAP_IFC maps flat code storage (flat, HNSW and their SQ
    variants). FAISS refuses the two together on an IVF index, so each kind gets its own."""
    kind = faiss.IO_FLAG_MMAP if index_type.startswith("ivf") else faiss.IO_FLAG_MMAP_IFC
    return kind | faiss.IO_FLAG_READ_ONLY


def _recall_sample(vectors: np.ndarray, k: int, sample: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of the real vectors as queries, with their exact top-k (computed once, reused while tuning)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    queries = np.ascontiguousarray(vectors[np.sort(picks)], dtype=np.float32)
    exact_index = faiss.IndexFlatIP(vectors.shape[1])
    exact_index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, exact = exact_index.search(queries, k)
    return queries, exact


def measure_recall(index: faiss.Index, vectors: np.ndarray, *, k: int = 10, sample: int = 1000, seed: int = 0) -> float:
    """recall@k of ``index`` against exact search, with a seeded sample of the real vectors as queries."""
    n = len(vectors)
    if n == 0:
        return 1.0
    k = min(k, n)
    queries, exact = _recall_sample(vectors, k, sample, seed)
    _, approx = index.search(queries, k)
    return recall_at_k(approx, exact, k)


def _breadth(index: faiss.Index) -> tuple[str, int, int] | None:
    """(parameter, value, ceiling) of the search-time knob that trades speed for recall, if the index has one."""
    if hasattr(index, "hnsw"):
        return "efSearch", int(index.hnsw.efSearch), max(int(index.hnsw.efSearch), index.ntotal, 1)
    if hasattr(index, "nprobe"):
        return "nprobe", int(index.nprobe), int(index.nlist)
    return None


def _set_breadth(index: faiss.Index, name: str, value: int) -> None:
    if name == "efSearch":
        index.hnsw.efSearch = value
    else:
        index.nprobe = value


def tune_recall(
    index: faiss.Index,
    vectors: np.ndarray,
    floor: float,
    *,
    k: int = 10,
    sample: int = 1000,
    max_breadth: int = 2048,
    seed: int = 0,
) -> tuple[float, dict[str, int]]:
    """Widen the index's search breadth (HNSW efSearch, IVF nprobe), doubling, until recall@k reaches ``floor``.

    The build-time default breadth suits a few hundred thousand vectors; at a million the same graph needs a
    wider search for the same recall, and failing a two-hour nightly build over a search-time knob would be
    the wrong trade. The chosen value is stored in the index file, so serving uses it. Returns the final
    recall and the parameter; the caller decides whether a recall still under the floor fails the build.
    """
    n = len(vectors)
    knob = _breadth(index)
    if n == 0 or knob is None:
        return 1.0, {}
    k = min(k, n)
    name, value, ceiling = knob
    ceiling = min(ceiling, max(max_breadth, value))
    queries, exact = _recall_sample(vectors, k, sample, seed)
    while True:
        _, approx = index.search(queries, k)
        recall = recall_at_k(approx, exact, k)
        if recall >= floor or value >= ceiling:
            return recall, {name: value}
        logger.info("recall@%d %.3f below %.3f at %s=%d; widening", k, recall, floor, name, value)
        value = min(value * 2, ceiling)
        _set_breadth(index, name, value)


class VectorStore:
    """Vectors addressed by article id. Knows nothing about text: ids and float32 rows only."""

    def __init__(self, ids: Sequence[str], vectors: np.ndarray, index: faiss.Index, index_type: str) -> None:
        if len(ids) != index.ntotal or len(ids) != len(vectors):
            raise StoreError(f"{len(ids)} ids for {index.ntotal} indexed and {len(vectors)} stored vectors")
        self._ids = ids if isinstance(ids, list) else list(ids)
        if len(set(self._ids)) != len(self._ids):
            raise StoreError("duplicate ids in the store")
        self._positions_map: dict[str, int] | None = None  # built on first use: a million ids cost ~100 MB
        self.vectors = vectors
        self.index = index
        self.index_type = index_type

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(cls, ids: Sequence[str], vectors: np.ndarray, spec: IndexSpec | None = None) -> "VectorStore":
        spec = spec or IndexSpec()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise StoreError(f"vectors must be a 2-D array, got shape {vectors.shape}")
        if len(ids) != len(vectors):
            raise StoreError(f"{len(ids)} ids but {len(vectors)} vectors")
        kind = spec.resolve(len(vectors))
        index = _make_index(kind, vectors.shape[1], spec, vectors)
        if not index.is_trained:
            index.train(vectors)
        if len(vectors):
            index.add(vectors)
        logger.info("built %s index over %d vectors", kind, len(vectors))
        return cls(ids, vectors, index, kind)

    # -- queries ------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return self._ids

    @property
    def count(self) -> int:
        return len(self._ids)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    @property
    def _positions(self) -> dict[str, int]:
        if self._positions_map is None:
            self._positions_map = {id_: pos for pos, id_ in enumerate(self._ids)}
        return self._positions_map

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._positions

    def position(self, article_id: str) -> int:
        try:
            return self._positions[article_id]
        except KeyError:
            raise KeyError(article_id) from None

    def vector(self, article_id: str) -> np.ndarray:
        return np.asarray(self.vectors[self.position(article_id)], dtype=np.float32)

    def search_positions(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions) like FAISS: rows padded with position -1 when k exceeds the count."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dimension:
            raise StoreError(f"query dimension {queries.shape[1]} does not match the index ({self.dimension})")
        if k <= 0:
            raise ValueError("k must be positive")
        if self.count == 0:
            return (np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64))
        if self.index_type.startswith("hnsw"):
            # efSearch below k silently truncates results
            self.index.hnsw.efSearch = max(self.index.hnsw.efSearch, k)
        return self.index.search(queries, k)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        scores, positions = self.search_positions(queries, k)
        return [
            [(self._ids[p], float(s)) for p, s in zip(prow, srow) if p >= 0] for prow, srow in zip(positions, scores)
        ]

    def recall(self, *, k: int = 10, sample: int = 1000) -> float:
        if self.index_type == "flat":
            return 1.0
        return measure_recall(self.index, np.asarray(self.vectors), k=k, sample=sample)

    def tune(
        self, floor: float, *, k: int = 10, sample: int = 1000, max_breadth: int = 2048
    ) -> tuple[float, dict[str, int]]:
        """Widen the search breadth until recall@k against exact search reaches ``floor`` (see ``tune_recall``)."""
        if self.index_type == "flat":
            return 1.0, {}
        return tune_recall(self.index, np.asarray(self.vectors), floor, k=k, sample=sample, max_breadth=max_breadth)

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: Path) -> list[str]:
        """Write the store's files into ``directory``; returns their names for the manifest."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_writer(directory / INDEX_FILE) as fh:
            fh.write(faiss.serialize_index(self.index).tobytes())
        atomic_save_npy(directory / VECTORS_FILE, np.asarray(self.vectors, dtype=np.float32))
        atomic_write_bytes(directory / IDS_FILE, json.dumps(self._ids, ensure_ascii=False).encode("utf-8"))
        return [INDEX_FILE, VECTORS_FILE, IDS_FILE]

    @staticmethod
    def load_vectors(directory: Path, *, mmap: bool = True) -> np.ndarray:
        """Only the stored vectors of a saved store (an incremental build reuses them without the index)."""
        return np.load(Path(directory) / VECTORS_FILE, mmap_mode="r" if mmap else None)

    @classmethod
    def load(
        cls, directory: Path, *, index_type: str, mmap: bool = False, ef_search: int | None = None
    ) -> "VectorStore":
        """``mmap`` maps the files read-only so several worker processes share one copy in the page cache."""
        directory = Path(directory)
        try:
            ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
            flags = _mmap_flags(index_type) if mmap else 0
            index = faiss.read_index(str(directory / INDEX_FILE), flags)
            vectors = np.load(directory / VECTORS_FILE, mmap_mode="r" if mmap else None)
        except FileNotFoundError as exc:
            raise StoreError(f"{exc.filename}: missing") from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise StoreError(
                f"{directory}: cannot read the index: {str(exc).splitlines()[0] if str(exc) else exc}"
            ) from None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise StoreError(f"{directory / IDS_FILE}: not a JSON list of string ids")
        if ef_search and hasattr(index, "hnsw"):
            index.hnsw.efSearch = ef_search
        return cls(ids, vectors, index, index_type)
