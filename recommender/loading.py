"""Reading CMS exports (JSONL, CSV, Parquet; files or folders) into validated articles.

A bad row is never silently dropped: it becomes a :class:`Reject` naming file, line, field and reason.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from .article import Article, parse_article
from .errors import FieldError, LoadError, RejectsExceededError, echo

__all__ = ["Reject", "LoadResult", "load_articles", "iter_records", "SUPPORTED_SUFFIXES", "check_rejects"]

logger = logging.getLogger(__name__)

_JSONL = (".jsonl", ".ndjson", ".json")
_CSV = (".csv",)
_PARQUET = (".parquet", ".pq")
SUPPORTED_SUFFIXES = _JSONL + _CSV + _PARQUET
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # article bodies exceed csv's 128 KB default


@dataclass(frozen=True)
class Reject:
    file: str
    line: int
    field: str
    reason: str
    #: the row's id when it has a readable one (so an editor can find the article in the CMS)
    article_id: str | None = None

    def __str__(self) -> str:
        where = f" (article {echo(self.article_id, 80)})" if self.article_id else ""
        return f"{self.file}:{self.line}: {self.field}: {self.reason}{where}"


@dataclass
class LoadResult:
    articles: list[Article]
    rejects: list[Reject] = field(default_factory=list)
    rows: int = 0
    duplicates: int = 0
    derived_titles: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def reject_share(self) -> float:
        return len(self.rejects) / self.rows if self.rows else 0.0

    def write_rejects(self, path: Path) -> None:
        from index.persist import atomic_writer

        with atomic_writer(path) as fh:
            for reject in self.rejects:
                fh.write(json.dumps(asdict(reject), ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n")


def _expand(paths: Sequence[Path | str]) -> list[Path]:
    files: list[Path] = []
    if not paths:
        raise LoadError("no input files given")
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise LoadError(f"{path}: folder holds no {'/'.join(SUPPORTED_SUFFIXES)} files")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise LoadError(
                    f"{path}: unknown format {path.suffix or '(no extension)'!r}; "
                    f"expected one of {', '.join(SUPPORTED_SUFFIXES)}"
                )
            files.append(path)
        elif path.exists():
            raise LoadError(f"{path}: not a regular file or folder")
        else:
            raise LoadError(f"{path}: no such file or folder")
    return files


def _open_bytes(path: Path) -> io.BufferedReader:
    try:
        return open(path, "rb")
    except PermissionError:
        raise LoadError(f"{path}: permission denied") from None
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror}") from None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any, Reject | None]]:
    with _open_bytes(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, None, Reject(str(path), lineno, "encoding", f"invalid UTF-8 at byte {exc.start}")
                continue
            try:
                yield lineno, json.loads(text), None
            except json.JSONDecodeError as exc:
                yield lineno, None, Reject(str(path), lineno, "json", f"invalid JSON: {exc.msg} at column {exc.colno}")
            except RecursionError:
                yield lineno, None, Reject(str(path), lineno, "json", "invalid JSON: nested too deeply")


def _iter_csv(path: Path) -> Iterator[tuple[int, Any, Reject | None]]:
    with _open_bytes(path) as raw:
        try:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            reader = csv.DictReader(text)
            if reader.fieldnames is None:
                return
            start = reader.line_num + 1
            for row in reader:
                if None in row:  # more cells than header columns
                    yield start, None, Reject(str(path), start, "csv", "more cells than header columns")
                else:
                    record: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
                    yield start, record, None
                start = reader.line_num + 1
        except UnicodeDecodeError as exc:
            line = locals().get("start", 1)
            yield (
                line,
                None,
                Reject(str(path), line, "encoding", f"invalid UTF-8 at byte {exc.start}; rest of file skipped"),
            )
        except csv.Error as exc:
            line = locals().get("start", 1)
            yield line, None, Reject(str(path), line, "csv", f"malformed CSV: {exc}; rest of file skipped")


def _iter_parquet(path: Path) -> Iterator[tuple[int, Any, Reject | None]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a core dependency
        raise LoadError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise LoadError(f"{path}: not a readable Parquet file: {exc}") from None
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            row += 1
            yield row, record, None


def iter_records(path: Path) -> Iterator[tuple[int, Any, Reject | None]]:
    """(line or row number, raw record or None, reject or None) for every row of one file."""
    suffix = path.suffix.lower()
    if suffix in _JSONL:
        return _iter_jsonl(path)
    if suffix in _CSV:
        return _iter_csv(path)
    return _iter_parquet(path)


def load_articles(paths: Sequence[Path | str], *, clean_html: bool = True, title_from_body: bool = False) -> LoadResult:
    """Load every row of every file. Duplicate ids: the last occurrence wins (it is the newest edit)."""
    files = _expand(paths)
    by_id: dict[str, Article] = {}
    result = LoadResult(articles=[], files=[str(f) for f in files])
    duplicate_ids: list[str] = []
    for path in files:
        if path.stat().st_size == 0:
            raise LoadError(f"{path}: empty file (no articles)")
        rows_before = result.rows
        for lineno, record, reject in iter_records(path):
            result.rows += 1
            if reject is not None:
                result.rejects.append(reject)
                continue
            try:
                article = parse_article(record, clean_html=clean_html, title_from_body=title_from_body)
            except FieldError as exc:
                raw_id = record.get("id") if isinstance(record, dict) else None
                article_id = str(raw_id) if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
                result.rejects.append(
                    Reject(str(path), lineno, exc.field, exc.reason, article_id if exc.field != "id" else None)
                )
                continue
            if title_from_body and article.extra.get("title_derived"):
                result.derived_titles += 1
            if article.id in by_id:
                result.duplicates += 1
                if len(duplicate_ids) < 3:
                    duplicate_ids.append(article.id)
                del by_id[article.id]  # re-insert so order follows the winning row
            by_id[article.id] = article
        if result.rows == rows_before:
            raise LoadError(f"{path}: empty file (no articles)")
    result.articles = list(by_id.values())
    if result.duplicates:
        examples = ", ".join(echo(i, 60) for i in duplicate_ids)
        logger.warning("%d duplicate ids (%s): the last occurrence of each was kept", result.duplicates, examples)
    return result


def check_rejects(result: LoadResult, max_share: float, rejects_path: Path | None, *, show: int = 5) -> None:
    """Fail when too many rows are bad: a half-read export must not replace a good index."""
    if not result.rejects:
        return
    if result.reject_share <= max_share and result.articles:
        logger.warning(
            "%d rows rejected (%.2f%%), see %s", len(result.rejects), 100 * result.reject_share, rejects_path
        )
        return
    first = "; ".join(str(r) for r in result.rejects[:show])
    more = f" (+{len(result.rejects) - show} more)" if len(result.rejects) > show else ""
    where = f"; all rejects in {rejects_path}" if rejects_path else ""
    raise RejectsExceededError(
        f"{len(result.rejects)} of {result.rows} rows rejected ({100 * result.reject_share:.1f}% > "
        f"{100 * max_share:.1f}% allowed): {first}{more}{where}"
    )
