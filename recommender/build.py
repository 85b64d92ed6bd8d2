"""The nightly build: export in, a validated version published atomically, the previous one untouched.

Stages: load -> reuse unchanged vectors -> embed the rest -> lexical model -> near-duplicate signatures ->
FAISS index -> precomputed candidate lists -> validation -> (quality gate) -> publish -> gc.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from index import IndexDirectory, IndexSpec, Manifest, NoVersionError, VectorStore, atomic_save_npy, atomic_write_json, atomic_writer

from . import __version__
from .article import Article
from .dedup import SIGNATURE_SCHEME, dedup_text, minhash_signatures
from .embedding import Embedder
from .article_table import read_article_hashes
from .checkpoint import EmbeddingCheckpoint
from .engine import ARTICLES_FILE, NEIGHBORS_FILES, SIGNATURES_FILE
from .errors import DiskFullError, RecommenderError, ValidationFailedError
from .lexical import LexicalModel, lexical_neighbors, lexical_recall
from .live import WriteAheadLog
from .loading import check_rejects, load_articles
from .settings import Settings
from .text import embedding_text, lexical_text

__all__ = ["build_index", "BuildReport", "Gate", "REPORT_FILE"]

logger = logging.getLogger(__name__)
REPORT_FILE = "build_report.json"

#: A quality gate: given the staged version's folder and the published one's (or None), raise
#: ValidationFailedError to refuse publishing. The evaluation package provides one (``--gate``).
Gate = Callable[[Path, Path | None], dict[str, Any]]


@dataclass
class BuildReport:
    version: str | None = None
    published: bool = False
    index_dir: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    throughput: dict[str, float] = field(default_factory=dict)
    index_type: str = ""
    recall_at_10: float | None = None
    #: the approximate index's search breadth after tuning to the recall floor (e.g. {"efSearch": 256})
    search_params: dict[str, int] = field(default_factory=dict)
    #: share of the exact top-10 TF-IDF neighbours in the precomputed lists (measured when the corpus is above
    #: ``lexical_exact_threshold`` and common terms are capped; None = exact)
    lexical_recall_at_10: float | None = None
    rejects_file: str | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    removed_versions: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        c = self.counts
        parts = [f"{k} {c[k]}" for k in ("articles", "new", "changed", "unchanged", "removed", "rejected", "duplicates", "derived_titles", "resumed") if c.get(k) or k == "articles"]
        total = sum(self.timings.values())
        rate = self.throughput.get("articles_per_s")
        head = f"published {self.version}" if self.published else "built (not published)"
        return f"{head}: {', '.join(parts)}; {self.index_type} index; {total:.1f}s" + (f" ({rate:.0f} articles/s)" if rate else "")


class _Stages:
    def __init__(self, report: BuildReport) -> None:
        self.report = report

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        logger.info("stage %s ...", name)
        try:
            yield
        finally:
            self.report.timings[name] = round(time.perf_counter() - start, 3)
            logger.info("stage %s done in %.2fs", name, self.report.timings[name])


def _previous(directory: IndexDirectory) -> tuple[Path | None, Manifest | None]:
    try:
        path = directory.current_path()
        return path, Manifest.read(path)
    except Exception as exc:  # a broken or missing previous version only means nothing to reuse
        if not isinstance(exc, NoVersionError):
            logger.warning("previous version unusable for reuse: %s", exc)
        return None, None


def _embedding_key(settings: Settings, model_id: str) -> dict[str, Any]:
    """Everything that changes a vector for the same text: reuse only when all of it matches."""
    return {
        "model": model_id,
        "backend": settings.embedding_backend,
        "max_seq_length": settings.max_seq_length,
        "text_strategy": settings.text_strategy,
        "lead_words": settings.lead_words,
    }


#: articles per progress step and checkpoint segment; ST sorts each chunk by length to cut padding
EMBED_CHUNK = 4096


def _embed(
    embedder: Embedder,
    articles: Sequence[Article],
    settings: Settings,
    progress: bool,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Vectors for ``articles``; ``on_chunk(start, vectors)`` sees each chunk as it finishes (checkpointing)."""
    texts = [embedding_text(a, strategy=settings.text_strategy, lead_words=settings.lead_words) for a in articles]
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    if settings.engine == "ray":
        from .distributed import ray_embed

        vectors = ray_embed(
            texts,
            model=settings.model,
            backend=settings.embedding_backend,
            batch_size=settings.batch_size,
            max_seq_length=settings.max_seq_length,
            address=settings.ray_address,
            workers=settings.ray_workers,
        )
        if on_chunk is not None:
            on_chunk(0, vectors)
        return vectors
    chunk = EMBED_CHUNK
    out = []
    bar = None
    if progress and sys.stderr.isatty():
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
        elif progress:
            rate = done / max(time.perf_counter() - start, 1e-9)
            logger.info("embedded %d/%d articles (%.0f/s)", done, len(texts), rate)
    if bar is not None:
        bar.close()
    return np.vstack(out)


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


def _validate(vectors: np.ndarray, ids: list[str], self_ok: np.ndarray, store: VectorStore, approximate: bool) -> dict[str, Any]:
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
    result = {"ok": not problems, "problems": problems, "self_retrieval": round(self_share, 6), "nan_vectors": nan_rows, "zero_vectors": zero_rows}
    if problems:
        raise ValidationFailedError("validation failed, nothing published: " + "; ".join(problems))
    return result


def build_index(
    sources: Sequence[Path | str],
    settings: Settings,
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    progress: bool = True,
    gate: Gate | None = None,
) -> BuildReport:
    """Build and publish a new version. On any failure nothing is published and the served version stays."""
    report = BuildReport(index_dir=str(settings.index_dir))
    try:
        return _build(sources, settings, report, full=full, embedder=embedder, progress=progress, gate=gate)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            where = exc.filename or settings.index_dir
            raise DiskFullError(
                f"no space left on device while writing {where}; nothing was published and the current version is unchanged"
            ) from None
        raise
    except RecommenderError as exc:
        # The operator reads why a night failed in the same place as a good night's report.
        if report.version and not report.published:
            report.error = str(exc)
            if isinstance(exc, ValidationFailedError) and exc.details:
                report.gate = exc.details
            try:
                atomic_write_json(Path(settings.index_dir) / "reports" / f"{report.version}.failed.json", report.to_dict())
            except OSError:
                logger.warning("could not write the failure report")
        raise


def _build(
    sources: Sequence[Path | str],
    settings: Settings,
    report: BuildReport,
    *,
    full: bool,
    embedder: Embedder | None,
    progress: bool,
    gate: Gate | None,
) -> BuildReport:
    directory = IndexDirectory(settings.index_dir)
    stage = _Stages(report)
    with directory.lock():
        leftovers = directory.clean_staging()
        if leftovers:
            logger.warning("removed %d unfinished build(s) left by a crash", leftovers)
        version = directory.new_version_name()
        report.version = version
        with stage("load"):
            loaded = load_articles(sources, title_from_body=settings.title_from_body)
            rejects_path = None
            if loaded.rejects:
                rejects_path = directory.root / "rejects" / f"{version}.jsonl"
                loaded.write_rejects(rejects_path)
                report.rejects_file = str(rejects_path)
            report.counts.update(rows=loaded.rows, rejected=len(loaded.rejects), duplicates=loaded.duplicates, derived_titles=loaded.derived_titles)
            check_rejects(loaded, settings.max_reject_share, rejects_path)
            articles, wal_seq, applied = _fold_live_changes(loaded.articles, WriteAheadLog(directory.root))
            report.counts["live_changes"] = applied
        ids = [a.id for a in articles]
        hashes = [a.content_hash() for a in articles]
        report.counts["articles"] = len(articles)

        with stage("load_model"):
            embedder = embedder or Embedder(settings.model, backend=settings.embedding_backend, batch_size=settings.batch_size, max_seq_length=settings.max_seq_length)
        key = _embedding_key(settings, embedder.model_id)

        with stage("reuse"):
            prev_path, prev_manifest = _previous(directory)
            reuse_rows: dict[str, int] = {}
            prev_vectors = prev_sigs = None
            prev_ids: list[str] = []
            if prev_path is not None and prev_manifest is not None:
                try:
                    prev_ids, prev_hashes = read_article_hashes(prev_path / ARTICLES_FILE)
                    if prev_manifest.extra.get("signature_scheme") == SIGNATURE_SCHEME:
                        prev_sigs = np.load(prev_path / SIGNATURES_FILE, mmap_mode="r")
                    if not full and prev_manifest.extra.get("embedding") == key:
                        prev_vectors = np.load(prev_path / "vectors.npy", mmap_mode="r")
                        current = dict(zip(ids, hashes))
                        reuse_rows = {i: r for r, (i, h) in enumerate(zip(prev_ids, prev_hashes)) if current.get(i) == h}
                except (OSError, ValueError) as exc:
                    logger.warning("previous version unreadable, embedding everything: %s", exc)
                    reuse_rows, prev_vectors, prev_sigs = {}, None, None
            prev_set = set(prev_ids)
            report.counts["unchanged"] = len(reuse_rows)
            report.counts["new"] = sum(1 for i in ids if i not in prev_set)
            report.counts["changed"] = len(ids) - report.counts["unchanged"] - report.counts["new"]
            report.counts["removed"] = len(prev_set - set(ids))
            todo = [j for j, i in enumerate(ids) if i not in reuse_rows]
            # Vectors an unfinished earlier build already paid for (see checkpoint.py); --full starts afresh.
            checkpoint = EmbeddingCheckpoint(directory.root, key)
            if full:
                checkpoint.clear()
            saved = checkpoint.load()
            resumed = [j for j in todo if hashes[j] in saved]
            if resumed:
                logger.info("resuming %d vectors embedded by an unfinished build", len(resumed))
                todo = [j for j in todo if hashes[j] not in saved]
            report.counts["resumed"] = len(resumed)

        with stage("embed"):
            fresh = _embed(
                embedder,
                [articles[j] for j in todo],
                settings,
                progress,
                on_chunk=lambda start, chunk: checkpoint.save([hashes[j] for j in todo[start : start + len(chunk)]], chunk),
            )
            vectors = np.zeros((len(articles), embedder.dimension), dtype=np.float32)
            if todo:
                vectors[todo] = fresh
            if resumed:
                vectors[resumed] = np.stack([saved[hashes[j]] for j in resumed])
            del saved
            if reuse_rows and prev_vectors is not None:
                mine = [j for j, i in enumerate(ids) if i in reuse_rows]
                vectors[mine] = prev_vectors[[reuse_rows[ids[j]] for j in mine]]
            report.counts["embedded"] = len(todo)

        with stage("lexical"):
            lexical = LexicalModel().fit([lexical_text(a) for a in articles])

        with stage("signatures"):
            signatures = np.zeros((len(articles), 64), dtype=np.uint32)
            sig_todo = todo if prev_sigs is not None and reuse_rows else list(range(len(articles)))
            if sig_todo:
                signatures[sig_todo] = minhash_signatures([dedup_text(articles[j].title, articles[j].body) for j in sig_todo])
            if prev_sigs is not None and reuse_rows:
                mine = [j for j, i in enumerate(ids) if i in reuse_rows]
                signatures[mine] = prev_sigs[[reuse_rows[ids[j]] for j in mine]]

        with stage("index"):
            spec = IndexSpec(
                index_type=settings.index_type,
                exact_threshold=settings.exact_threshold,
                hnsw_m=settings.hnsw_m,
                hnsw_ef_search=settings.hnsw_ef_search,
                ivf_nprobe=settings.ivf_nprobe,
            )
            store = VectorStore.build(ids, vectors, spec)
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

        with stage("neighbors"):
            k = min(settings.neighbors, max(len(articles) - 1, 1))
            sem_neighbors, self_ok = _semantic_neighbors(store, vectors, k)
            capped = len(articles) > settings.lexical_exact_threshold
            cap = settings.lexical_max_postings if capped else None
            lex_neighbors = lexical_neighbors(lexical.matrix_, k, max_postings=cap, by_term=lexical.by_term)
            if capped:
                report.lexical_recall_at_10 = round(lexical_recall(lexical.matrix_, lex_neighbors, k=10, by_term=lexical.by_term), 4)

        with stage("validate"):
            report.validation = _validate(vectors, ids, self_ok, store, store.index_type != "flat")

        with directory.stage(version) as (name, staged):
            with stage("write"):
                files = store.save(staged)
                files += lexical.save(staged)
                with atomic_writer(staged / ARTICLES_FILE) as fh:
                    for article, h in zip(articles, hashes):
                        record = article.to_dict()
                        record["_hash"] = h
                        fh.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
                files.append(ARTICLES_FILE)
                for name_, arr in ((SIGNATURES_FILE, signatures), (NEIGHBORS_FILES["semantic"], sem_neighbors), (NEIGHBORS_FILES["lexical"], lex_neighbors)):
                    atomic_save_npy(staged / name_, arr)
                    files.append(name_)
                total = sum(report.timings.values())
                report.throughput = {
                    "articles_per_s": round(len(articles) / total, 2) if total else 0.0,
                    "embedded_per_s": round(len(todo) / report.timings["embed"], 2) if todo and report.timings.get("embed") else 0.0,
                }
                report.version = name
                atomic_write_json(staged / REPORT_FILE, report.to_dict())
                files.append(REPORT_FILE)
                manifest = Manifest(
                    model=embedder.model_id,
                    dimension=embedder.dimension,
                    count=len(ids),
                    index_type=store.index_type,
                    package_version=__version__,
                    corpus_hash=_corpus_hash(ids, hashes),
                    extra={
                        "embedding": key,
                        "text_strategy": settings.text_strategy,
                        "lead_words": settings.lead_words,
                        "neighbors": k,
                        "recall_at_10": report.recall_at_10,
                        "search_params": report.search_params,
                        "lexical_recall_at_10": report.lexical_recall_at_10,
                        "wal_seq": wal_seq,
                        "signature_scheme": SIGNATURE_SCHEME,
                        "counts": report.counts,
                    },
                )
                for f in files:
                    manifest.record_file(staged, f)
                manifest.write(staged)
            if gate is not None:
                with stage("gate"):
                    report.gate = gate(staged, prev_path)
            with stage("publish"):
                directory.promote(name, staged)
                directory.set_current(name)
                report.published = True
            checkpoint.clear()
        if applied:
            WriteAheadLog(directory.root).compact(wal_seq)
        report.removed_versions = directory.gc(settings.keep_versions)
        atomic_write_json(directory.root / "reports" / f"{name}.json", report.to_dict())
    return report


def _fold_live_changes(articles: list[Article], wal: WriteAheadLog) -> tuple[list[Article], int, int]:
    """Apply PUT/DELETE changes accepted since the last build on top of the export, in log order."""
    entries, last = wal.snapshot()
    if not entries:
        return articles, last, 0
    by_id = {a.id: a for a in articles}
    for entry in entries:
        if entry.op == "upsert" and entry.article is not None:
            by_id.pop(entry.article_id, None)
            by_id[entry.article_id] = entry.article
        elif entry.op == "delete":
            by_id.pop(entry.article_id, None)
    return list(by_id.values()), last, len(entries)


def _corpus_hash(ids: list[str], hashes: list[str]) -> str:
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for i, c in sorted(zip(ids, hashes)):
        h.update(i.encode("utf-8", "surrogatepass") + b"\x00" + c.encode() + b"\n")
    return h.hexdigest()
