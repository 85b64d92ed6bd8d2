"""The catalog: every servable article of one index version plus live changes, addressed by position.

Base rows come from the published version (possibly memory-mapped); live upserts are appended as new
positions and deletes/replacements only clear an ``alive`` flag, so a position never changes meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .article import Article
from .article_table import ArticleTable
from .candidates import Candidates, Filters, Source
from .lexical import row_dots

__all__ = ["Catalog"]


@dataclass
class _Live:
    vectors: list[np.ndarray]
    signatures: list[np.ndarray]
    lexical: list[sp.csr_matrix]


class Catalog:
    def __init__(
        self,
        articles: ArticleTable | Sequence[Article],
        vectors: np.ndarray,
        signatures: np.ndarray,
        lexical: sp.csr_matrix,
    ) -> None:
        self.articles = articles if isinstance(articles, ArticleTable) else ArticleTable.from_articles(articles)
        self.base_count = len(self.articles)
        self._vectors = vectors
        self._signatures = signatures
        self._lexical = lexical
        self._live = _Live([], [], [])
        self._live_cache: tuple[np.ndarray, np.ndarray, sp.csr_matrix] | None = None
        self.positions: dict[str, int] = {article_id: i for i, article_id in enumerate(self.articles.ids)}
        self.alive = np.ones(self.base_count, dtype=bool)
        self._urls: dict[str, int] | None = None  # URL key -> position, built on the first lookup

    # Columns of the article table (grown together by ``add``, one atomic swap of the table).
    @property
    def published(self) -> np.ndarray:
        return self.articles.columns.published

    @property
    def sections(self) -> np.ndarray:
        return self.articles.columns.sections

    @property
    def languages(self) -> np.ndarray:
        return self.articles.columns.languages

    @property
    def tags(self) -> list[frozenset[str]]:
        return self.articles.columns.tags

    # -- lookups ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.alive.sum())

    @property
    def signature_width(self) -> int:
        return int(self._signatures.shape[1])

    @property
    def size(self) -> int:
        """Positions in use, alive or not."""
        return len(self.articles)

    def position(self, article_id: str) -> int | None:
        return self.positions.get(article_id)

    def get(self, article_id: str) -> Article | None:
        pos = self.positions.get(article_id)
        return self.articles[pos] if pos is not None else None

    def url_position(self, key: str) -> int | None:
        """The live article whose URL key is ``key`` (of several, the last one added wins)."""
        if self._urls is None:
            keys, alive = self.articles.columns.url_keys, self.alive
            self._urls = {key: pos for pos, key in enumerate(keys[: len(alive)]) if key is not None and alive[pos]}
        return self._urls.get(key)

    def live_positions(self) -> np.ndarray:
        return np.flatnonzero(self.alive[self.base_count :]) + self.base_count

    def live_candidates(self, vector: np.ndarray, query_lex: sp.csr_matrix, n: int) -> np.ndarray:
        """Live articles for a first round: all of them up to ``n``; beyond, the top ``n`` by embedding cosine and
        the top ``n`` by TF-IDF cosine, as the precomputed lists pick indexed ones. Live articles are in no list
        until the next build, and a day of live writes (hundreds) scored in full made every request dearer."""
        live = self.live_positions()
        if len(live) <= n:
            return live
        semantic = self.vectors(live) @ vector
        lexical = row_dots(self.lexical_rows(live), query_lex)[:, 0]
        keep = np.union1d(np.argpartition(-semantic, n - 1)[:n], np.argpartition(-lexical, n - 1)[:n])
        return live[keep]

    def _live_arrays(self) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
        if self._live_cache is None:
            dim = self._vectors.shape[1]
            vecs = np.vstack(self._live.vectors) if self._live.vectors else np.zeros((0, dim), np.float32)
            sigs = (
                np.vstack(self._live.signatures)
                if self._live.signatures
                else np.zeros((0, self._signatures.shape[1]), np.uint32)
            )
            lex = (
                sp.vstack(self._live.lexical).tocsr()
                if self._live.lexical
                else sp.csr_matrix((0, self._lexical.shape[1]), dtype=np.float32)
            )
            self._live_cache = (vecs, sigs, lex)
        return self._live_cache

    def vectors(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        base = positions < self.base_count
        if base.all():
            return np.asarray(self._vectors[positions], dtype=np.float32)
        out = np.empty((len(positions), self._vectors.shape[1]), dtype=np.float32)
        out[base] = self._vectors[positions[base]]
        out[~base] = self._live_arrays()[0][positions[~base] - self.base_count]
        return out

    def signatures(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        base = positions < self.base_count
        if base.all():
            return np.asarray(self._signatures[positions])
        out = np.empty((len(positions), self._signatures.shape[1]), dtype=np.uint32)
        out[base] = self._signatures[positions[base]]
        out[~base] = self._live_arrays()[1][positions[~base] - self.base_count]
        return out

    def lexical_rows(self, positions: np.ndarray) -> sp.csr_matrix:
        positions = np.asarray(positions, dtype=np.int64)
        base = positions < self.base_count
        if base.all():
            return self._lexical[positions]
        # Two fancy-indexing calls and one reordering, not one sparse slice per row: with a few hundred live
        # articles among the candidates, per-row slicing cost ~20 ms a request.
        live = self._live_arrays()[2]
        n_base = int(base.sum())
        stacked = sp.vstack([self._lexical[positions[base]], live[positions[~base] - self.base_count]]).tocsr()
        order = np.empty(len(positions), dtype=np.int64)
        order[base] = np.arange(n_base)
        order[~base] = n_base + np.arange(len(positions) - n_base)
        return stacked[order]

    def source(self, pos: int) -> Source:
        return Source(
            vector=self.vectors(np.array([pos]))[0],
            signature=self.signatures(np.array([pos]))[0],
            published=float(self.published[pos]),
            section=self.sections[pos],
            tags=self.tags[pos],
            position=pos,
        )

    # -- candidates ---------------------------------------------------------------------------
    def eligible(self, filters: Filters, exclude: Sequence[int] = ()) -> np.ndarray:
        """Boolean mask over all positions: alive, not excluded, and passing every filter."""
        mask = self.alive.copy()
        n = len(mask)  # a concurrent add may have grown the other arrays already: read only this far
        if filters.sections:
            mask &= np.isin(self.sections[:n], [s.lower() for s in filters.sections])
        if filters.exclude_sections:
            mask &= ~np.isin(self.sections[:n], [s.lower() for s in filters.exclude_sections])
        if filters.language:
            mask &= self.languages[:n] == filters.language.lower()
        with np.errstate(invalid="ignore"):
            if filters.since is not None:
                mask &= self.published[:n] >= filters.since.timestamp()
            if filters.until is not None:
                mask &= self.published[:n] <= filters.until.timestamp()
        if filters.tags:
            wanted = {t.lower() for t in filters.tags}
            tags = self.tags
            mask &= np.fromiter((bool(wanted & tags[i]) for i in range(n)), dtype=bool, count=n)
        for article_id in filters.exclude_ids:
            pos = self.positions.get(article_id)
            if pos is not None and pos < n:
                mask[pos] = False
        for pos in exclude:
            if 0 <= pos < n:
                mask[pos] = False
        return mask

    def gather(self, positions: np.ndarray, source: Source, query_lexical: sp.csr_matrix) -> Candidates:
        positions = np.asarray(positions, dtype=np.int64)
        vecs = self.vectors(positions)
        lex = self.lexical_rows(positions)
        return Candidates(
            positions=positions,
            semantic=(vecs @ source.vector).astype(np.float32),
            lexical=row_dots(lex, query_lexical)[:, 0],
            vectors=vecs,
            signatures=self.signatures(positions),
            published=self.published[positions],
            sections=self.sections[positions],
            tags=[self.tags[p] for p in positions],
            lexical_rows=lex,
        )

    # -- live changes -------------------------------------------------------------------------
    def add(self, article: Article, vector: np.ndarray, signature: np.ndarray, lexical_row: sp.csr_matrix) -> int:
        """Append (or replace) one article: :meth:`add_many` of one."""
        self.add_many([article], np.asarray(vector).reshape(1, -1), np.asarray(signature).reshape(1, -1), lexical_row)
        return len(self.articles) - 1

    def search(self, words: tuple[str, ...] = (), section: str | None = None) -> list[int]:
        """Positions of live articles whose title (or id) contains every word (lower case), in ``section``
        (lower case) if given; newest first, undated last. Scans the title and section columns only."""
        table, alive = self.articles, self.alive
        ids, titles, sections, published = table.ids, table.titles, table.columns.sections, table.columns.published
        found = []
        for pos in range(len(alive)):
            if not alive[pos] or (section and sections[pos] != section):
                continue
            if words:
                text = f"{titles[pos]} {ids[pos]}".lower()
                if not all(w in text for w in words):
                    continue
            found.append(pos)
        found.sort(key=lambda p: (-(published[p] if published[p] == published[p] else -np.inf), ids[p]))
        return found

    def add_many(
        self, articles: Sequence[Article], vectors: np.ndarray, signatures: np.ndarray, lexical_rows: sp.csr_matrix
    ) -> None:
        """Append (or replace) articles with one append of each array (a restart replaying a thousand live changes
        onto a million-article version copies the columns once, not a thousand times). The old row of a replaced
        id stops being served at once; a later article with an id that came earlier in the batch replaces it.

        Not safe against concurrent readers on its own: the serving layer holds the snapshot's write lock around
        every change (``recommender.serving.snapshot``). The order still matters for readers holding an older
        table: every per-position array is grown first, and the ids become reachable through ``positions`` last."""
        if not len(articles):
            return
        start = len(self.articles)
        self._live.vectors.append(np.asarray(vectors, dtype=np.float32).reshape(len(articles), -1))
        self._live.signatures.append(np.asarray(signatures, dtype=np.uint32).reshape(len(articles), -1))
        self._live.lexical.append(sp.csr_matrix(lexical_rows, dtype=np.float32))
        self._live_cache = None
        self.articles = self.articles.appended_many(articles)
        alive = np.append(self.alive, np.ones(len(articles), dtype=bool))
        newest: dict[str, int] = {}
        for offset, article in enumerate(articles):
            for old in (self.positions.get(article.id), newest.get(article.id)):
                if old is not None:
                    alive[old] = False
            newest[article.id] = start + offset
        self.alive = alive
        self.positions.update(newest)
        if self._urls is not None:
            keys = self.articles.columns.url_keys
            self._urls = {key: pos for key, pos in self._urls.items() if alive[pos]}
            for pos in newest.values():
                if keys[pos] is not None:
                    self._urls[keys[pos]] = pos

    def remove(self, article_id: str) -> bool:
        pos = self.positions.pop(article_id, None)
        if pos is None:
            return False
        self.alive[pos] = False
        key = self.articles.columns.url_keys[pos]
        if self._urls is not None and key is not None and self._urls.get(key) == pos:
            del self._urls[key]
        return True
