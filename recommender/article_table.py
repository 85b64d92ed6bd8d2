"""The articles of one served version, by position: read back from the version's file when a response needs them.

Ranking and filters read only a few columns per article (date, section, language, tags), and the title search
reads titles; bodies, summaries, URLs, authors and labels are needed only for the handful of articles in a
response. Holding every article as a Python object costs a service about 0.8 KB per article plus its text (4-5 KB
for a real news body): 5 GB per worker at a million articles. So the columns live in compact arrays, and a full
:class:`~recommender.article.Article` is parsed from the version's ``articles.jsonl`` on demand. The file is
memory-mapped read-only: worker processes share one copy in the page cache, and a version deleted from disk
while it is served stays readable until the service lets go of it.

The build also writes the columns and each article's byte offset as an Arrow IPC file (``articles.arrow``), so a
load maps that file instead of parsing every JSON line (versions written before it are still parsed).

Live rows (upserts since the build) are kept as objects. The table is copy-on-write (:meth:`appended` returns a
new table sharing the base), so readers that took a reference never see it change under them.
"""

from __future__ import annotations

import json
import mmap
import sys
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence

import numpy as np
import orjson

from .article import Article, parse_article, parse_datetime
from .urls import DEFAULT_TRACKING_PARAMS, normalize_url

__all__ = ["ArticleTable", "Columns", "read_article_hashes", "write_article_table"]


def _lower(value: Any) -> str | None:
    # Interned: a million articles share a dozen section and language strings.
    return sys.intern(value.strip().lower()) if isinstance(value, str) and value.strip() else None


def _epoch(value: Any, field: str) -> float:
    when = parse_datetime(value, field) if value else None
    return when.timestamp() if when else np.nan


class Columns:
    """Per-position arrays the catalog filters and ranks on, and each article's URL key (lookups by URL)."""

    def __init__(self, n: int) -> None:
        self.published = np.full(n, np.nan, dtype=np.float64)
        self.expires = np.full(n, np.nan, dtype=np.float64)
        self.sections = np.empty(n, dtype=object)
        self.languages = np.empty(n, dtype=object)
        self.url_keys = np.empty(n, dtype=object)
        self.tags: list[frozenset[str]] = [frozenset()] * n
        self._tagsets: dict[frozenset[str], frozenset[str]] = {}

    def set(self, pos: int, row: Any, tracking: Sequence[str]) -> None:
        """Fill position ``pos`` from an :class:`Article` or a raw record of the version's file."""
        get = (lambda name: getattr(row, name, None)) if isinstance(row, Article) else row.get
        self.published[pos] = _epoch(get("published_at"), "published_at")
        self.expires[pos] = _epoch(get("expires_at"), "expires_at")
        self.sections[pos] = _lower(get("section"))
        self.languages[pos] = _lower(get("language"))
        self.url_keys[pos] = url_key(get("canonical_url") or get("url"), tracking)
        tags = get("tags")
        if tags:
            key = frozenset(t.lower() for t in tags if isinstance(t, str))
            self.tags[pos] = self._tagsets.setdefault(key, key)

    def grown(self, extra: int) -> Columns:
        """A copy with ``extra`` empty positions at the end (tag sets still shared)."""
        out = Columns(0)
        out.published = np.append(self.published, np.full(extra, np.nan))
        out.expires = np.append(self.expires, np.full(extra, np.nan))
        out.sections = np.append(self.sections, np.full(extra, None, dtype=object))
        out.languages = np.append(self.languages, np.full(extra, None, dtype=object))
        out.url_keys = np.append(self.url_keys, np.full(extra, None, dtype=object))
        out.tags = [*self.tags, *([frozenset()] * extra)]
        out._tagsets = self._tagsets
        return out


def url_key(url: Any, tracking: Sequence[str]) -> str | None:
    """The lookup key of an article's URL (see :func:`recommender.urls.normalize_url`)."""
    return sys.intern(key) if isinstance(url, str) and (key := normalize_url(url, tracking)) else None


def _loads(line: bytes) -> dict[str, Any]:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:  # orjson is stricter than the writer in corner cases; json is the reference
        return json.loads(line.decode("utf-8", "surrogatepass"))


class ArticleTable(Sequence[Article]):
    """``table[pos]`` is an Article; ``ids`` and ``titles`` are plain lists; ``columns`` feed the catalog."""

    def __init__(
        self,
        ids: list[str],
        titles: list[str],
        columns: Columns,
        *,
        source: mmap.mmap | None = None,
        offsets: np.ndarray | None = None,
        resident: Sequence[Article] = (),
        live: tuple[Article, ...] = (),
        tracking: Sequence[str] = DEFAULT_TRACKING_PARAMS,
    ) -> None:
        self.ids = ids
        self.titles = titles
        self.columns = columns
        self._source = source
        self._offsets = offsets
        self._resident = resident
        self.base_count = len(ids) - len(live)
        self._live = live
        #: the tracking parameters URL keys were made with (the version's: a lookup must normalise the same way)
        self.tracking = tuple(tracking)

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: Path, columns_path: Path | None = None, *, tracking: Sequence[str] = DEFAULT_TRACKING_PARAMS
    ) -> ArticleTable:
        """A version's ``articles.jsonl``, indexed from its Arrow columns file when there is one, else by one
        parsing pass for offsets, ids, titles and columns."""
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            source = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        if source is None:
            return cls([], [], Columns(0), offsets=np.zeros(1, dtype=np.int64), tracking=tracking)
        if columns_path is not None and columns_path.exists():
            table = cls._from_arrow(columns_path, source, size, tracking)
            if table is not None:
                return table
        ends = np.flatnonzero(np.frombuffer(source, dtype=np.uint8) == 10) + 1
        if len(ends) == 0 or ends[-1] != size:  # a last line without its newline
            ends = np.append(ends, size)
        offsets = np.concatenate([[0], ends]).astype(np.int64)
        n = len(ends)
        ids: list[str] = [""] * n
        titles: list[str] = [""] * n
        columns = Columns(n)
        for pos in range(n):
            record = _loads(source[offsets[pos] : offsets[pos + 1]])
            ids[pos] = record["id"]
            titles[pos] = record.get("title") or ""
            columns.set(pos, record, tracking)
        return cls(ids, titles, columns, source=source, offsets=offsets, tracking=tracking)

    @classmethod
    def _from_arrow(cls, path: Path, source: mmap.mmap, size: int, tracking: Sequence[str]) -> ArticleTable | None:
        import pyarrow as pa

        with pa.memory_map(str(path), "r") as mapped:
            table = pa.ipc.open_file(mapped).read_all()
        if "url_key" not in table.column_names:  # written before URL lookups: parse the lines instead
            return None
        n = table.num_rows
        columns = Columns(n)
        columns.published = table.column("published").to_numpy(zero_copy_only=False).astype(np.float64)
        columns.expires = table.column("expires").to_numpy(zero_copy_only=False).astype(np.float64)
        columns.url_keys[:] = [sys.intern(v) if v else None for v in table.column("url_key").to_pylist()]
        intern = sys.intern
        columns.sections[:] = [intern(v) if v else None for v in table.column("section").to_pylist()]
        columns.languages[:] = [intern(v) if v else None for v in table.column("language").to_pylist()]
        tagsets = columns._tagsets
        columns.tags = [tagsets.setdefault(key, key) for key in map(frozenset, table.column("tags").to_pylist())]
        offsets = np.append(table.column("offset").to_numpy(), size).astype(np.int64)
        ids = table.column("id").to_pylist()
        titles = table.column("title").to_pylist()
        return cls(ids, titles, columns, source=source, offsets=offsets, tracking=tracking)

    @classmethod
    def from_articles(
        cls, articles: Sequence[Article], *, tracking: Sequence[str] = DEFAULT_TRACKING_PARAMS
    ) -> ArticleTable:
        """A table held in memory (a version being built, tests)."""
        columns = Columns(len(articles))
        for pos, a in enumerate(articles):
            columns.set(pos, a, tracking)
        ids, titles = [a.id for a in articles], [a.title for a in articles]
        return cls(ids, titles, columns, resident=list(articles), tracking=tracking)

    def appended(self, article: Article) -> ArticleTable:
        """A new table with ``article`` at the next position (the base is shared, not copied)."""
        return self.appended_many([article])

    def appended_many(self, articles: Sequence[Article]) -> ArticleTable:
        """A new table with ``articles`` at the next positions: one copy of the columns for the whole batch."""
        n = len(self.ids)
        columns = self.columns.grown(len(articles))
        for i, article in enumerate(articles):
            columns.set(n + i, article, self.tracking)
        return ArticleTable(
            [*self.ids, *(a.id for a in articles)],
            [*self.titles, *(a.title for a in articles)],
            columns,
            source=self._source,
            offsets=self._offsets,
            resident=self._resident,
            live=(*self._live, *articles),
            tracking=self.tracking,
        )

    # -- access -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, pos: int) -> Article:  # type: ignore[override]
        if pos < 0:
            pos += len(self.ids)
        if not 0 <= pos < len(self.ids):
            raise IndexError(pos)
        if pos >= self.base_count:
            return self._live[pos - self.base_count]
        if self._resident:
            return self._resident[pos]
        assert self._source is not None and self._offsets is not None
        record = _loads(self._source[self._offsets[pos] : self._offsets[pos + 1]])
        record.pop("_hash", None)
        return parse_article(record, clean_html=False)

    def __iter__(self) -> Iterator[Article]:
        for pos in range(len(self.ids)):
            yield self[pos]


def write_article_table(
    fh: BinaryIO,
    columns_fh: BinaryIO,
    articles: Sequence[Article],
    hashes: Sequence[str],
    tracking: Sequence[str] = DEFAULT_TRACKING_PARAMS,
) -> None:
    """One JSON line per article (with its content hash, for incremental builds) and the Arrow columns file that
    lets :meth:`ArticleTable.open` skip parsing them."""
    import pyarrow as pa

    offsets = np.zeros(len(articles), dtype=np.int64)
    at = 0
    for i, (article, content_hash) in enumerate(zip(articles, hashes)):
        record = article.to_dict()
        record["_hash"] = content_hash
        line = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
        fh.write(line)
        offsets[i] = at
        at += len(line)
    table = pa.table(
        {
            "id": pa.array([a.id for a in articles], pa.string()),
            "title": pa.array([a.title for a in articles], pa.string()),
            "published": pa.array(
                [a.published_at.timestamp() if a.published_at else np.nan for a in articles], pa.float64()
            ),
            "expires": pa.array([a.expires_at.timestamp() if a.expires_at else np.nan for a in articles], pa.float64()),
            "url_key": pa.array([url_key(a.canonical_url or a.url, tracking) for a in articles], pa.string()),
            "section": pa.array([_lower(a.section) for a in articles], pa.string()),
            "language": pa.array([_lower(a.language) for a in articles], pa.string()),
            "tags": pa.array([sorted({t.lower() for t in a.tags}) for a in articles], pa.list_(pa.string())),
            "offset": pa.array(offsets, pa.int64()),
        }
    )
    with pa.ipc.new_file(columns_fh, table.schema) as writer:
        writer.write_table(table)


def read_article_hashes(path: Path) -> tuple[list[str], list[str]]:
    """Ids and content hashes of a version's ``articles.jsonl``, without building articles (incremental builds)."""
    ids: list[str] = []
    hashes: list[str] = []
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                record = _loads(line)
                ids.append(record["id"])
                hashes.append(record.get("_hash", ""))
    return ids, hashes
