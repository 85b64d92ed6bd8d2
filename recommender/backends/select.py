"""``auto``: measure every backend that runs here once per machine and model, keep the fastest that agrees with float32.

On first use (per CPU model and features, core count, library versions, model and max_seq_length) each available
backend embeds a fixed sample of 256 news texts, interleaved in 4 chunks so a load that comes or goes during the
run hits every backend alike, and its top-10 neighbours within the sample are compared with float32's. The choice
is the fastest backend whose top-10 agreement is at least ``AGREEMENT_FLOOR``; float32, the reference, always
qualifies. The measurement is written atomically under ``$XDG_CACHE_HOME/related-articles/backend-selection/`` and
reused by every later process on the machine, so a build, the service and its live writes pick the same backend.

Cost of a first use on 2 cores: 110-120 s measured here with a load average of 5-6 from other jobs (conversions
included); the work is 256 texts through each of six backends, float32 the slowest at ~6 s of it on an idle machine
(42 articles/s), so ~30 s idle (estimated, not measured: no idle machine was had). A backend below 0.8x float32
after the first chunk is not timed further (it could never be chosen). The ONNX and OpenVINO conversions (~15 s)
happen once per model and library version and are cached under ``models/``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import BACKEND_NAMES, load_backend, threads, unavailable
from .cache import cache_root, key_digest, library_versions, machine
from .model import ModelSpec, read_model_spec

__all__ = [
    "AGREEMENT_FLOOR",
    "Selection",
    "backend_selection",
    "choose",
    "format_table",
    "resolve_auto",
    "selection_key",
    "selection_sample",
    "table_rows",
    "top_k_agreement",
]

logger = logging.getLogger(__name__)

#: a backend is chosen only when its top-10 neighbours agree with float32's at least this much
AGREEMENT_FLOOR = 0.99
#: texts in the selection sample, the chunks they are timed in, and the batch size (the build's default)
SAMPLE_SIZE = 256
CHUNKS = 4
BATCH_SIZE = 64
#: after the first chunk, a backend slower than this share of float32's rate is not timed further
PRUNE = 0.8
#: bump when the sample or the procedure changes: old measurements are then ignored
PROCEDURE = 1
_FORMAT = 1
REFERENCE = "float32"


@dataclass
class Selection:
    """What ``auto`` chose and the numbers behind it (one row per backend)."""

    choice: str
    rows: list[dict[str, Any]]
    key: dict[str, Any]
    measured_at: str
    seconds: float
    cached: bool = False
    path: str | None = None
    floor: float = AGREEMENT_FLOOR
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, backend: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["backend"] == backend), None)

    def to_dict(self) -> dict[str, Any]:
        """For the build report and manifest: the choice, its own numbers, the table and the machine."""
        return {
            "choice": self.choice,
            "chosen": self.row(self.choice),
            "floor": self.floor,
            "measured_at": self.measured_at,
            "measure_seconds": self.seconds,
            "cached": self.cached,
            "machine": self.key.get("machine"),
            "rows": self.rows,
        }


# -- the sample ---------------------------------------------------------------------------------------------------
def selection_sample() -> list[str]:
    """256 fixed texts from the bundled demo corpus, as builds embed them: the 140 articles' lead texts (title,
    summary, lead; 142-220 word pieces) and 116 headlines alone (drafts and short items), in a fixed order."""
    from ..article import parse_article
    from ..text import embedding_text

    raw = resources.files("recommender").joinpath("data/demo_articles.jsonl").read_text(encoding="utf-8")
    articles = [parse_article(json.loads(line)) for line in raw.splitlines() if line.strip()]
    texts = [embedding_text(a) for a in articles]
    texts += [embedding_text(a, strategy="title") for a in articles[: SAMPLE_SIZE - len(texts)]]
    random.Random(19).shuffle(texts)  # every timing chunk gets the same mix of long and short texts
    return texts[:SAMPLE_SIZE]


# -- measuring ----------------------------------------------------------------------------------------------------
def top_k(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(vectors) - 1)
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return part


def top_k_agreement(vectors: np.ndarray, reference: np.ndarray, k: int = 10) -> float:
    """Mean over texts of |top-k neighbours by ``vectors`` ∩ top-k by ``reference``| / k (self excluded)."""
    a, b = top_k(vectors, k), top_k(reference, k)
    width = a.shape[1]
    return float(np.mean([len(set(x) & set(y)) / width for x, y in zip(a.tolist(), b.tolist())]))


def _measure(
    candidates: Sequence[str],
    spec: ModelSpec,
    load_from: str,
    sample: Sequence[str],
    cache: Path | None,
    loader: Callable[..., Any] = load_backend,
) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    loaded: dict[str, Any] = {}
    for name in candidates:
        reason = unavailable(name, spec)
        if reason:
            rows[name] = {"backend": name, "status": "unavailable", "reason": reason}
            continue
        started = time.perf_counter()
        try:
            backend = loader(
                name,
                load_from,
                spec.model_id,
                batch_size=BATCH_SIZE,
                max_seq_length=spec.max_seq_length,
                cache=cache,
                spec=spec,
            )
            backend.encode(list(sample[:8]))  # first calls allocate and compile
        except Exception as exc:  # noqa: BLE001 - any failure of a backend is reported in its row, never chosen
            logger.warning("backend %s failed to load: %s", name, exc)
            rows[name] = {"backend": name, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        loaded[name] = backend
        rows[name] = {
            "backend": name,
            "status": "ok",
            "load_s": round(time.perf_counter() - started, 2),
            "info": backend.info(),
            "_s": 0.0,
            "_n": 0,
            "_v": [],
        }
    step = -(-len(sample) // CHUNKS)
    order = list(loaded)
    for c, start in enumerate(range(0, len(sample), step)):
        # Interleaved, the order rotating per chunk: a load that comes or goes hits every backend alike.
        chunk = list(sample[start : start + step])
        for name in order[c % len(order) :] + order[: c % len(order)]:
            row = rows[name]
            if row["status"] != "ok" or row.get("pruned"):
                continue
            t = time.perf_counter()
            try:
                vectors = loaded[name].encode(chunk)
            except Exception as exc:  # noqa: BLE001 - as above
                logger.warning("backend %s failed while measuring: %s", name, exc)
                row.update(status="failed", reason=f"{type(exc).__name__}: {exc}"[:300])
                continue
            row["_s"] += time.perf_counter() - t
            row["_n"] += len(vectors)
            row["_v"].append(vectors)
        if c == 0 and rows.get(REFERENCE, {}).get("_s"):
            # A backend well behind float32 after the first chunk can never be chosen (float32 always
            # qualifies): stop timing it, which saves most of the cost of a slow backend.
            ref_rate = rows[REFERENCE]["_n"] / rows[REFERENCE]["_s"]
            for name in order:
                row = rows[name]
                if (
                    name != REFERENCE
                    and row["status"] == "ok"
                    and row["_s"]
                    and row["_n"] / row["_s"] < PRUNE * ref_rate
                ):
                    row["pruned"] = True
                    row["reason"] = (
                        f"{row['_n'] / row['_s'] / ref_rate:.2f}x float32 on the first {len(chunk)} texts: "
                        "not measured further"
                    )
    reference = None
    if rows.get(REFERENCE, {}).get("status") == "ok":
        reference = np.vstack(rows[REFERENCE]["_v"])
    for name in loaded:
        row = rows[name]
        parts = row.pop("_v", [])
        secs, count = row.pop("_s", 0.0), row.pop("_n", 0)
        if row["status"] != "ok" or not parts:
            continue
        row["articles_per_s"] = round(count / secs, 1) if secs else None
        vectors = np.vstack(parts)
        norms = np.linalg.norm(vectors, axis=1)
        if (
            vectors.dtype != np.float32
            or vectors.shape != (count, spec.dimension)
            or not np.all(np.isfinite(vectors))
            or np.abs(norms - 1).max() > 1e-3
        ):
            row.update(
                status="failed",
                reason=f"bad vectors: {vectors.dtype} {vectors.shape}, norms {norms.min():.3f}-{norms.max():.3f}",
            )
            continue
        if reference is not None and not row.get("pruned"):
            row["top10_agreement"] = round(top_k_agreement(vectors, reference), 4)
            row["min_cosine"] = round(float((vectors * reference).sum(axis=1).min()), 5)
    base = rows.get(REFERENCE, {}).get("articles_per_s")
    for row in rows.values():
        if base and row.get("articles_per_s"):
            row["ratio_vs_float32"] = round(row["articles_per_s"] / base, 2)
    return [rows[n] for n in candidates]


def choose(rows: Iterable[dict[str, Any]], floor: float = AGREEMENT_FLOOR) -> str:
    """The fastest measured backend whose top-10 agreement with float32 is at least ``floor``; float32 when
    nothing else qualifies (or nothing was measured). Pure: a table of numbers in, a name out."""
    best, best_rate = REFERENCE, -1.0
    for row in rows:
        if row.get("status", "ok") != "ok" or row.get("articles_per_s") is None:
            continue
        agreement = 1.0 if row["backend"] == REFERENCE else row.get("top10_agreement")
        if agreement is None or agreement < floor:
            continue
        if row["articles_per_s"] > best_rate:
            best, best_rate = row["backend"], float(row["articles_per_s"])
    return best


# -- the cache ----------------------------------------------------------------------------------------------------
def selection_key(spec: ModelSpec, sample: Sequence[str] | None = None) -> dict[str, Any]:
    """Everything that changes which backend is fastest or what it computes."""
    from .. import __version__

    texts = selection_sample() if sample is None else list(sample)
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]
    return {
        "sample": {"texts": len(texts), "sha256": digest, "chunks": CHUNKS, "batch_size": BATCH_SIZE},
        "model": spec.model_id,
        "model_fingerprint": spec.fingerprint,
        "max_seq_length": spec.max_seq_length,
        "machine": machine(),
        "threads": threads(),  # a service or Ray actor limited to 1 thread measures (and may choose) apart
        "libraries": library_versions(),
        "package": __version__,
        "procedure": PROCEDURE,
        "backends": list(BACKEND_NAMES),
    }


def _read(path: Path, key: dict[str, Any]) -> Selection | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT or data.get("key") != key:
            logger.info("backend measurement %s is for another key: measuring again", path)
            return None
        rows = data["rows"]
        choice = data["choice"]
        if choice not in BACKEND_NAMES or not isinstance(rows, list):
            raise ValueError(f"choice {choice!r}")
        return Selection(
            choice=choice,
            rows=rows,
            key=key,
            measured_at=str(data["measured_at"]),
            seconds=float(data["seconds"]),
            cached=True,
            path=str(path),
            floor=float(data["floor"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("ignoring unreadable backend measurement %s (%s): measuring again", path, exc)
        return None


def resolve_auto(
    load_from: str,
    model_id: str,
    max_seq_length: int | None,
    *,
    cache: str | Path | None = None,
    refresh: bool = False,
    candidates: Sequence[str] = BACKEND_NAMES,
    sample: Sequence[str] | None = None,
    loader: Callable[..., Any] = load_backend,
) -> Selection:
    """The cached selection for this machine and model, measuring first when there is none (or ``refresh``).
    Concurrent first uses wait on a lock instead of measuring side by side (and slowing each other down).
    ``candidates``, ``sample`` and ``loader`` are for tests and benchmarks; the sample is part of the key."""
    from index.persist import atomic_write_json

    spec = read_model_spec(load_from, model_id, max_seq_length)
    texts = selection_sample() if sample is None else list(sample)
    key = selection_key(spec, texts)
    key["backends"] = list(candidates)
    folder = cache_root(cache) / "backend-selection"
    path = folder / f"{key_digest(key)}.json"
    if not refresh:
        found = _read(path, key)
        if found is not None:
            return found
    fd: int | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{path.stem}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only home: measure anyway, every start, rather than fail
        logger.warning("cannot keep backend measurements in %s (%s): measuring without a cache", folder, exc)
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not refresh:
                found = _read(path, key)  # another process measured while this one waited
                if found is not None:
                    return found
        logger.info("measuring embedding backends for %s on this machine (once; cached in %s)", model_id, path)
        started = time.perf_counter()
        rows = _measure(list(candidates), spec, load_from, texts, Path(cache) if cache else None, loader)
        choice = choose(rows)
        selection = Selection(
            choice=choice,
            rows=rows,
            key=key,
            measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
            seconds=round(time.perf_counter() - started, 1),
            path=str(path),
            extra={"load_average": [round(x, 2) for x in os.getloadavg()]},
        )
        record = {
            "format": _FORMAT,
            "key": key,
            "choice": choice,
            "floor": AGREEMENT_FLOOR,
            "rows": rows,
            "measured_at": selection.measured_at,
            "seconds": selection.seconds,
            "load_average": selection.extra["load_average"],
        }
        if fd is not None:
            try:
                atomic_write_json(path, record)  # temp file, fsync, os.replace: readers never see half a file
            except OSError as exc:
                logger.warning("cannot write backend measurements %s: %s", path, exc)
        logger.info("embedding backend auto -> %s (%.0fs to measure)", choice, selection.seconds)
        return selection
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the flock


# -- the table for `recommender backends` ---------------------------------------------------------------------------
_COLUMNS = (
    "backend",
    "status",
    "articles_per_s",
    "ratio_vs_float32",
    "top10_agreement",
    "min_cosine",
    "load_s",
    "reason",
)


def backend_selection(
    model: str | None = None,
    max_seq_length: int | None = 256,
    *,
    cache: str | Path | None = None,
    refresh: bool = False,
) -> Selection:
    """The selection for ``model`` (default: the bundled one) on this machine, measuring on first use or ``refresh``."""
    from ..model_path import DEFAULT_MODEL, resolve_model

    load_from, model_id = resolve_model(model or DEFAULT_MODEL)
    return resolve_auto(load_from, model_id, max_seq_length, cache=cache, refresh=refresh)


def table_rows(selection: Selection) -> list[dict[str, Any]]:
    """One flat row per backend (``_COLUMNS`` plus precision and chosen), for JSON output or a table."""
    rows = []
    for row in selection.rows:
        flat = {k: row.get(k) for k in _COLUMNS}
        flat["precision"] = (row.get("info") or {}).get("precision")
        flat["chosen"] = row["backend"] == selection.choice
        rows.append(flat)
    return rows


def format_table(selection: Selection) -> str:
    """A plain-text table of :func:`table_rows`, with the machine and the choice."""
    machine_ = selection.key.get("machine") or {}

    def num(value: Any, fmt: str) -> str:
        return format(value, fmt) if isinstance(value, (int, float)) else "-".rjust(int(fmt.split(".")[0]))

    lines = [
        f"{'backend':14} {'precision':>12} {'articles/s':>10} {'x float32':>9} {'top-10':>7} {'min cos':>8}  status"
    ]
    for r in table_rows(selection):
        if r["status"] != "ok":
            status = f"{r['status']}: {r.get('reason') or ''}"
        elif r["chosen"]:
            status = "chosen"
        elif r.get("reason"):
            status = r["reason"]
        elif r["backend"] != REFERENCE and (r.get("top10_agreement") or 0.0) < selection.floor:
            status = f"below the {selection.floor} agreement floor"
        else:
            status = "ok"
        lines.append(
            f"{r['backend']:14} {r.get('precision') or '-':>12} {num(r.get('articles_per_s'), '10.1f')} "
            f"{num(r.get('ratio_vs_float32'), '9.2f')} {num(r.get('top10_agreement'), '7.3f')} "
            f"{num(r.get('min_cosine'), '8.4f')}  {status}"
        )
    lines.append(
        f"auto -> {selection.choice} (CPU {machine_.get('cpu')}, {machine_.get('cores')} cores; measured "
        f"{selection.measured_at} in {selection.seconds:.0f}s on {(selection.key.get('sample') or {}).get('texts')} texts{'; cached' if selection.cached else ''})"
    )
    return "\n".join(lines)
