"""The build's stages, in order, each a named function over one :class:`BuildState`.

load -> load_model -> reuse -> embed -> lexical -> signatures -> index -> neighbors -> validate, then, inside the
staging folder, write -> gate -> publish. A stage reads what earlier ones put in the state and adds its own part;
any exception leaves nothing published (see :mod:`recommender.build.pipeline`).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index import IndexDirectory, IndexSpec, Manifest, NoVersionError, VectorStore, atomic_write_json

from ..article import Article
from ..article_table import url_key
from ..changelog import ChangeLog, fold, fold_editorial
from ..checkpoint import EmbeddingCheckpoint
from ..dedup import SIGNATURE_SCHEME, dedup_text, minhash_signatures
from ..editorial import Editorial, read_editorial
from ..errors import ValidationFailedError
from ..lexical import LexicalModel, lexical_neighbors, lexical_recall
from ..loading import check_rejects, load_articles
from ..settings import Settings
from ..text import embedding_text, lexical_text
from ..version import __version__
from ..version_files import EDITORIAL_FILE, REPORT_FILE, Reusable, read_reusable, write_version
from .report import BuildReport

if TYPE_CHECKING:  # without importing torch at module load
    from ..embedding import Embedder

__all__ = ["BuildState", "Gate", "PREPARE", "embedding_key"]

logger = logging.getLogger(__name__)

#: A quality gate: given the staged version's folder and the published one's (or None), raise
#: ValidationFailedError to refuse publishing. The evaluation package provides one (``--gate``).
Gate = Callable[[Path, Path | None], dict[str, Any]]


@dataclass
class BuildState:
    """Everything one build knows, filled in stage by stage."""

    settings: Settings
    directory: IndexDirectory
    report: BuildReport
    version: str
    sources: Sequence[Path | str]
    full: bool = False
    progress: bool = True
    embedder: Embedder | None = None
    # load
    articles: list[Article] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    wal_seq: int = 0
    live_changes: int = 0
    editorial: Editorial = field(default_factory=Editorial)
    # reuse and embed
    key: dict[str, Any] = field(default_factory=dict)
    previous: Path | None = None
    reusable: Reusable | None = None
    reuse_rows: dict[str, int] = field(default_factory=dict)
    todo: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    saved: dict[str, np.ndarray] = field(default_factory=dict)
    checkpoint: EmbeddingCheckpoint | None = None
    vectors: np.ndarray | None = None
    # models and lists
    lexical: LexicalModel | None = None
    signatures: np.ndarray | None = None
    store: VectorStore | None = None
    neighbors: dict[str, np.ndarray] = field(default_factory=dict)
    neighbor_count: int = 0
    self_ok: np.ndarray | None = None


def embedding_key(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """Everything that changes a vector for the same text: vectors are reused only when all of it matches. The
    backend is the one that made the vectors (``auto`` resolved, or an injected embedder's own), so vectors of
    different backends never mix silently: an incremental build on another backend re-embeds."""
    return {
        "model": embedder.model_id,
        "backend": embedder.backend,
        "max_seq_length": settings.max_seq_length,
        "text_strategy": settings.text_strategy,
        "lead_words": settings.lead_words,
    }


# -- stages before the staging folder -------------------------------------------------------------
def load(state: BuildState) -> None:
    """The export, bad rows counted and set aside, and the live changes logged since the last build folded in."""
    settings, report = state.settings, state.report
    loaded = load_articles(state.sources, title_from_body=settings.title_from_body)
    rejects_path = None
    if loaded.rejects:
        rejects_path = state.directory.root / "rejects" / f"{state.version}.jsonl"
        loaded.write_rejects(rejects_path)
        report.rejects_file = str(rejects_path)
    report.counts.update(
        rows=loaded.rows,
        rejected=len(loaded.rejects),
        duplicates=loaded.duplicates,
        derived_titles=loaded.derived_titles,
    )
    check_rejects(loaded, settings.max_reject_share, rejects_path)
    changes, state.wal_seq = ChangeLog(state.directory.root).snapshot()
    state.articles = fold(loaded.articles, changes) if changes else loaded.articles
    state.editorial = fold_editorial(_base_editorial(state), changes)
    report.counts["pins"] = len(state.editorial.pins)
    report.counts["blocks"] = (
        len(state.editorial.blocked_ids) + len(state.editorial.blocked_sections) + len(state.editorial.blocked_pairs)
    )
    state.live_changes = len(changes)
    report.counts["live_changes"] = len(changes)
    state.ids = [a.id for a in state.articles]
    state.hashes = [a.content_hash() for a in state.articles]
    report.counts["articles"] = len(state.articles)
    _count_duplicate_urls(state)


def _base_editorial(state: BuildState) -> Editorial:
    """The editorial state before this build's logged changes: the settings' file, else an ``editorial.json``
    beside the (first) export, else the published version's."""
    if state.settings.editorial_file is not None:
        return read_editorial(state.settings.editorial_file)
    first = Path(state.sources[0]) if state.sources else None
    if first is not None:
        beside = (first if first.is_dir() else first.parent) / "editorial.json"
        if beside.is_file():
            state.report.editorial_file = str(beside)
            return read_editorial(beside)
    try:
        previous = state.directory.current_path() / EDITORIAL_FILE
    except NoVersionError:
        return Editorial()
    return read_editorial(previous) if previous.is_file() else Editorial()


def _count_duplicate_urls(state: BuildState) -> None:
    """Articles whose URLs normalise to the same key: a lookup by URL finds only one of them (the last)."""
    by_key: dict[str, list[str]] = {}
    for article in state.articles:
        key = url_key(article.canonical_url or article.url, state.settings.tracking_params)
        if key is not None:
            by_key.setdefault(key, []).append(article.id)
    shared = {key: ids for key, ids in by_key.items() if len(ids) > 1}
    state.report.counts["duplicate_urls"] = sum(len(ids) for ids in shared.values())
    state.report.duplicate_urls = [{"url": key, "ids": ids[:5]} for key, ids in list(shared.items())[:10]]
    if shared:
        logger.warning(
            "%d articles share a URL with another (e.g. %s: %s); a lookup by URL finds the last one",
            state.report.counts["duplicate_urls"], next(iter(shared)), ", ".join(next(iter(shared.values()))[:3]),
        )  # fmt: skip


def load_model(state: BuildState) -> None:
    if state.embedder is None:
        from ..model_cache import embedder_for

        state.embedder = embedder_for(state.settings)
    state.key = embedding_key(state.settings, state.embedder)
    state.report.embedding = state.embedder.describe()


def _previous(directory: IndexDirectory) -> tuple[Path | None, Manifest | None]:
    try:
        path = directory.current_path()
        return path, Manifest.read(path)
    except Exception as exc:  # noqa: BLE001 - a broken or missing previous version only means nothing to reuse
        if not isinstance(exc, NoVersionError):
            logger.warning("previous version unusable for reuse: %s", exc)
        return None, None


def reuse(state: BuildState) -> None:
    """Which articles keep their vectors (same text, same embedding key) and which an unfinished build embedded."""
    report, ids, hashes = state.report, state.ids, state.hashes
    state.previous, manifest = _previous(state.directory)
    prev_ids: list[str] = []
    if state.previous is not None and manifest is not None:
        try:
            state.reusable = read_reusable(
                state.previous, manifest, embedding=None if state.full else state.key, signature_scheme=SIGNATURE_SCHEME
            )
        except (OSError, ValueError) as exc:
            logger.warning("previous version unreadable, embedding everything: %s", exc)
            state.reusable = None
        if state.reusable is not None:
            prev_ids = state.reusable.ids
            if state.reusable.vectors is not None:
                current = dict(zip(ids, hashes))
                state.reuse_rows = {
                    i: r for r, (i, h) in enumerate(zip(prev_ids, state.reusable.hashes)) if current.get(i) == h
                }
    prev_set = set(prev_ids)
    report.counts["unchanged"] = len(state.reuse_rows)
    report.counts["new"] = sum(1 for i in ids if i not in prev_set)
    report.counts["changed"] = len(ids) - report.counts["unchanged"] - report.counts["new"]
    report.counts["removed"] = len(prev_set - set(ids))
    todo = [j for j, i in enumerate(ids) if i not in state.reuse_rows]
    # Vectors an unfinished earlier build already paid for (see checkpoint.py); --full starts afresh.
    state.checkpoint = EmbeddingCheckpoint(state.directory.root, state.key)
    if state.full:
        state.checkpoint.clear()
    state.saved = state.checkpoint.load()
    state.resumed = [j for j in todo if hashes[j] in state.saved]
    if state.resumed:
        logger.info("resuming %d vectors embedded by an unfinished build", len(state.resumed))
    state.todo = [j for j in todo if hashes[j] not in state.saved]
    report.counts["resumed"] = len(state.resumed)


def embed(state: BuildState) -> None:
    """Vectors for every article: reused, resumed from a checkpoint, or embedded now (checkpointed per chunk)."""
    assert state.embedder is not None and state.checkpoint is not None
    todo, hashes, checkpoint = state.todo, state.hashes, state.checkpoint
    fresh = _embed_texts(
        state,
        [state.articles[j] for j in todo],
        on_chunk=lambda start, chunk: checkpoint.save([hashes[j] for j in todo[start : start + len(chunk)]], chunk),
    )
    vectors = np.zeros((len(state.articles), state.embedder.dimension), dtype=np.float32)
    if todo:
        vectors[todo] = fresh
    if state.resumed:
        vectors[state.resumed] = np.stack([state.saved[hashes[j]] for j in state.resumed])
    state.saved = {}
    if state.reuse_rows and state.reusable is not None and state.reusable.vectors is not None:
        mine = [j for j, i in enumerate(state.ids) if i in state.reuse_rows]
        vectors[mine] = state.reusable.vectors[[state.reuse_rows[state.ids[j]] for j in mine]]
    state.vectors = vectors
    state.report.counts["embedded"] = len(todo)


def _embed_texts(
    state: BuildState, articles: Sequence[Article], on_chunk: Callable[[int, np.ndarray], None] | None
) -> np.ndarray:
    """Vectors for ``articles``; ``on_chunk(start, vectors)`` sees each chunk as it finishes (checkpointing)."""
    settings, embedder = state.settings, state.embedder
    assert embedder is not None
    texts = [embedding_text(a, strategy=settings.text_strategy, lead_words=settings.lead_words) for a in articles]
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    if settings.engine == "ray":
        from ..distributed import ray_embed

        vectors = ray_embed(
            texts,
            model=settings.model,
            backend=embedder.backend,  # the concrete one the key records: every actor makes the same vectors
            batch_size=settings.batch_size,
            max_seq_length=settings.max_seq_length,
            address=settings.ray_address,
            workers=settings.ray_workers,
        )
        if on_chunk is not None:
            on_chunk(0, vectors)
        return vectors
    chunk = settings.checkpoint_every
    out = []
    bar = None
    if state.progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc="embedding", unit="article")
    start = time.perf_counter()
    for i in range(0, len(texts), chunk):
        out.append(embedder.encode(texts[i : i + chunk]))
        if on_chunk is not None:
            on_chunk(i, out[-1])
        done = min(i + chunk, len(texts))
        if bar is not None:
            bar.update(done - i)
        elif state.progress:
            rate = done / max(time.perf_counter() - start, 1e-9)
            logger.info("embedded %d/%d articles (%.0f/s)", done, len(texts), rate)
    if bar is not None:
        bar.close()
    return np.vstack(out)


def lexical(state: BuildState) -> None:
    state.lexical = LexicalModel().fit([lexical_text(a) for a in state.articles])


def signatures(state: BuildState) -> None:
    """MinHash signatures for near-duplicate checks, reused for unchanged articles."""
    n = len(state.articles)
    sigs = np.zeros((n, 64), dtype=np.uint32)
    previous = state.reusable.signatures if state.reusable is not None else None
    reuse_rows = state.reuse_rows if previous is not None else {}
    todo = state.todo + state.resumed if reuse_rows else list(range(n))
    if todo:
        sigs[todo] = minhash_signatures([dedup_text(state.articles[j].title, state.articles[j].body) for j in todo])
    if reuse_rows:
        mine = [j for j, i in enumerate(state.ids) if i in reuse_rows]
        sigs[mine] = previous[[reuse_rows[state.ids[j]] for j in mine]]
    state.signatures = sigs


def index(state: BuildState) -> None:
    """The FAISS index; an approximate one is tuned to the recall floor or refused."""
    settings, report = state.settings, state.report
    spec = IndexSpec(
        index_type=settings.index_type,
        exact_threshold=settings.exact_threshold,
        hnsw_m=settings.hnsw_m,
        hnsw_ef_search=settings.hnsw_ef_search,
        ivf_nprobe=settings.ivf_nprobe,
    )
    assert state.vectors is not None
    store = state.store = VectorStore.build(state.ids, state.vectors, spec)
    report.index_type = store.index_type
    if store.index_type != "flat":
        recall, report.search_params = store.tune(settings.recall_floor, k=10, max_breadth=settings.max_search_breadth)
        report.recall_at_10 = round(recall, 4)
        if report.recall_at_10 < settings.recall_floor:
            tried = ", ".join(f"{name} up to {value}" for name, value in report.search_params.items())
            raise ValidationFailedError(
                f"{store.index_type} index recall@10 {report.recall_at_10:.3f} is below the floor "
                f"{settings.recall_floor:.3f} ({tried}); nothing published (raise HNSW/IVF parameters or use flat)"
            )


def neighbors(state: BuildState) -> None:
    """Precomputed candidate lists of every article, one per retriever: a related request is then a lookup."""
    settings, report = state.settings, state.report
    assert state.store is not None and state.vectors is not None and state.lexical is not None
    k = state.neighbor_count = min(settings.neighbors, max(len(state.articles) - 1, 1))
    semantic, state.self_ok = _semantic_neighbors(state.store, state.vectors, k)
    capped = len(state.articles) > settings.lexical_exact_threshold
    cap = settings.lexical_max_postings if capped else None
    matrix = state.lexical.matrix_
    lex = lexical_neighbors(matrix, k, max_postings=cap, by_term=state.lexical.by_term)
    if capped:
        report.lexical_recall_at_10 = round(lexical_recall(matrix, lex, k=10, by_term=state.lexical.by_term), 4)
    state.neighbors = {"semantic": semantic, "lexical": lex}


def _semantic_neighbors(store: VectorStore, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k neighbours of every article (self removed) and whether each article found itself first."""
    n = len(vectors)
    out = np.full((n, k), -1, dtype=np.int32)
    self_ok = np.ones(n, dtype=bool)
    batch = 4096
    for start in range(0, n, batch):
        scores, pos = store.search_positions(vectors[start : start + batch], min(k + 1, n) if n else 1)
        for r in range(len(pos)):
            me = start + r
            row, srow = pos[r], scores[r]
            # Self-retrieval check: the article must be (tied for) its own nearest neighbour.
            # Identical texts give identical vectors, so a tie for first place with an exact copy counts.
            own = float(vectors[me] @ vectors[me])
            self_ok[me] = row[0] == me or abs(float(srow[0]) - own) < 1e-4
            kept = [p for p in row if p != me and p >= 0][:k]
            out[me, : len(kept)] = kept
    return out, self_ok


def validate(state: BuildState) -> None:
    """Refuse a version whose vectors are broken or whose index does not find each article itself."""
    assert state.vectors is not None and state.store is not None and state.self_ok is not None
    vectors, ids, self_ok, store = state.vectors, state.ids, state.self_ok, state.store
    approximate = store.index_type != "flat"
    norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.zeros(0)
    problems = []
    if store.count != len(ids) or len(vectors) != len(ids):
        problems.append(f"count mismatch: {len(ids)} articles, {len(vectors)} vectors, {store.count} indexed")
    nan_rows = int(np.isnan(vectors).any(axis=1).sum()) if len(vectors) else 0
    if nan_rows:
        problems.append(f"{nan_rows} vectors contain NaN")
    zero_rows = int((norms < 1e-6).sum())
    if zero_rows:
        problems.append(f"{zero_rows} zero vectors")
    missed = int((~self_ok).sum())
    self_share = 1 - missed / len(ids) if len(ids) else 1.0
    # Exact search must find every article itself; approximate search may miss a few (recall is checked apart).
    if missed and (not approximate or self_share < 0.99):
        examples = ", ".join(ids[i] for i in np.flatnonzero(~self_ok)[:3])
        problems.append(f"{missed} articles do not retrieve themselves first (e.g. {examples})")
    state.report.validation = {
        "ok": not problems,
        "problems": problems,
        "self_retrieval": round(self_share, 6),
        "nan_vectors": nan_rows,
        "zero_vectors": zero_rows,
    }
    if problems:
        raise ValidationFailedError("validation failed, nothing published: " + "; ".join(problems))


#: The stages that run before anything is written, in order.
PREPARE: tuple[tuple[str, Callable[[BuildState], None]], ...] = (
    ("load", load),
    ("load_model", load_model),
    ("reuse", reuse),
    ("embed", embed),
    ("lexical", lexical),
    ("signatures", signatures),
    ("index", index),
    ("neighbors", neighbors),
    ("validate", validate),
)


# -- stages inside the staging folder -------------------------------------------------------------
def write(state: BuildState, name: str, staged: Path) -> None:
    """Every file of the version, the build report and the manifest (with each file's digest) last."""
    report, settings = state.report, state.settings
    assert state.store is not None and state.lexical is not None and state.signatures is not None
    assert state.embedder is not None
    files = write_version(
        staged,
        store=state.store,
        lexical=state.lexical,
        articles=state.articles,
        hashes=state.hashes,
        signatures=state.signatures,
        neighbors=state.neighbors,
        tracking=settings.tracking_params,
        editorial=state.editorial,
    )
    total = sum(report.timings.values())
    embed_seconds = report.timings.get("embed")
    report.throughput = {
        "articles_per_s": round(len(state.articles) / total, 2) if total else 0.0,
        "embedded_per_s": round(len(state.todo) / embed_seconds, 2) if state.todo and embed_seconds else 0.0,
    }
    report.version = name
    atomic_write_json(staged / REPORT_FILE, report.to_dict())
    files.append(REPORT_FILE)
    manifest = Manifest(
        model=state.embedder.model_id,
        dimension=state.embedder.dimension,
        count=len(state.ids),
        index_type=state.store.index_type,
        package_version=__version__,
        corpus_hash=corpus_hash(state.ids, state.hashes),
        extra={
            "embedding": state.key,
            "embedding_backend": state.report.embedding,
            "text_strategy": settings.text_strategy,
            "lead_words": settings.lead_words,
            "neighbors": state.neighbor_count,
            "recall_at_10": report.recall_at_10,
            "search_params": report.search_params,
            "lexical_recall_at_10": report.lexical_recall_at_10,
            "wal_seq": state.wal_seq,
            "signature_scheme": SIGNATURE_SCHEME,
            "urls": {"tracking_params": list(settings.tracking_params)},
            "counts": report.counts,
        },
    )
    for f in files:
        manifest.record_file(staged, f)
    manifest.write(staged)


def corpus_hash(ids: list[str], hashes: list[str]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for i, c in sorted(zip(ids, hashes)):
        h.update(i.encode("utf-8", "surrogatepass") + b"\x00" + c.encode() + b"\n")
    return h.hexdigest()
