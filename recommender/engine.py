"""The recommender: one loaded index version, live changes on top, related articles out."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import scipy.sparse as sp

from index import IndexDirectory, Manifest, VectorStore

from .article import Article
from .box import Box, Related, Unrecommendable, filled, pinned_first, pinned_positions
from .candidates import Candidates, Filters, RankedItem, Source
from .catalog import Catalog
from .changelog import Change, latest
from .dedup import dedup_text, minhash_signatures, shingle_jaccard, story_shingles
from .editorial import Editorial, EditorialChange
from .embedding import Embedder, resolve_model
from .errors import ArticleNotFoundError, ConfigurationError, DamagedIndexError
from .lexical import LexicalModel
from .live_vectors import live_vectors
from .ranking import RankingConfig, rank
from .relevance import RelevanceModel, relevance_for
from .text import embedding_text, lexical_text
from .urls import normalize_url
from .version_files import read_version

__all__ = ["Recommender", "Related"]

logger = logging.getLogger(__name__)

#: Characters of a draft's summary and of its body that a related-for-draft request reads (a long news article is
#: 10-30 thousand characters).
DRAFT_TEXT_LIMIT = 40_000
_EXHAUSTIVE_LIMIT = 50_000  # below this many eligible articles, score them all rather than widen a search


def _check_scores(path: Path, cosines: np.ndarray) -> None:
    """Cosines of unit vectors lie in [-1, 1]: anything else means damaged vectors, which must not be served."""
    if len(cosines) and not (np.isfinite(cosines).all() and np.abs(cosines).max() <= 1.001):
        worst = (
            float(cosines[~np.isfinite(cosines)][0]) if not np.isfinite(cosines).all() else float(np.abs(cosines).max())
        )
        raise DamagedIndexError(
            f"{path}: vectors give a cosine of {worst:.4g}, outside [-1, 1]; the version's files are damaged: "
            "roll back or rebuild"
        )


class Recommender:
    """One loaded version plus live changes. Reads may run concurrently with each other; a live change must not
    run concurrently with anything (the serving layer's snapshot lock sees to that). Build with :meth:`open`."""

    def __init__(
        self,
        *,
        version: str,
        path: Path,
        manifest: Manifest,
        store: VectorStore,
        catalog: Catalog,
        lexical: LexicalModel,
        neighbors: dict[str, np.ndarray],
        config: RankingConfig,
        embedder: Embedder | Callable[[], Embedder] | None = None,
        editorial: Editorial | None = None,
        relevance: RelevanceModel | None = None,
    ) -> None:
        self.version = version
        self.path = path
        self.manifest = manifest
        self.store = store
        self.catalog = catalog
        self.lexical = lexical
        self.neighbors = neighbors
        self.config = config
        self._embedder = embedder
        #: pins and blocks (the version's, with live editorial changes applied)
        self.editorial = editorial or Editorial()
        #: scores each candidate's calibrated relevance (the floor and the feedback gate read it); None: no floor
        self.relevance_model = relevance
        self._unrecommendable = Unrecommendable()
        self.text_strategy = manifest.extra.get("text_strategy", "lead")
        self.lead_words = int(manifest.extra.get("lead_words", 120))
        #: articles the last :meth:`prepare` (and the last :meth:`replay`) had to embed: the rest had vectors
        self.last_embedded = 0
        self.replay_embedded = 0

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        index_dir: Path,
        *,
        model: str | None = None,
        config: RankingConfig | None = None,
        embedder: Embedder | Callable[[], Embedder] | None = None,
        version: str | None = None,
        mmap: bool = False,
        verify_digests: bool = True,
        relevance: RelevanceModel | Path | str | None = "default",
    ) -> "Recommender":
        """Load the published version (or ``version``). ``model`` is checked against the manifest before any
        vector is read: serving one model's vectors against another's queries would be silently wrong."""
        directory = IndexDirectory(index_dir)
        path = directory.version_path(version) if version else directory.current_path()
        return cls.load(
            path,
            model=model,
            config=config,
            embedder=embedder,
            mmap=mmap,
            verify_digests=verify_digests,
            relevance=relevance,
        )

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        model: str | None = None,
        config: RankingConfig | None = None,
        embedder: Embedder | Callable[[], Embedder] | None = None,
        mmap: bool = False,
        verify_digests: bool = True,
        relevance: RelevanceModel | Path | str | None = "default",
    ) -> "Recommender":
        """Load one version folder directly (a published one, or a staged build under evaluation). ``relevance``:
        ``"default"`` (the bundled model), a file from ``recommender calibrate``, or None (no relevance, no floor)."""
        path = Path(path)
        if model is not None:
            Manifest.read(path).check_compatible(model=resolve_model(model)[1])
        loaded = read_version(path, mmap=mmap, verify_digests=verify_digests)
        catalog = Catalog(loaded.articles, loaded.store.vectors, loaded.signatures, loaded.lexical.matrix_)
        return cls(
            version=path.name,
            path=path,
            manifest=loaded.manifest,
            store=loaded.store,
            catalog=catalog,
            lexical=loaded.lexical,
            neighbors=loaded.neighbors,
            config=config or RankingConfig(),
            embedder=embedder,
            editorial=loaded.editorial,
            relevance=relevance_for(relevance, loaded.manifest.model),
        )

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            raise ConfigurationError("this operation embeds text and needs a model; none was configured")
        if not isinstance(self._embedder, Embedder):
            self._embedder = self._embedder()
        if self._embedder.model_id != self.manifest.model:
            raise ConfigurationError(
                f"index was built with model {self.manifest.model!r} but {self._embedder.model_id!r} is loaded"
            )
        return self._embedder

    def __len__(self) -> int:
        return len(self.catalog)

    def article(self, article_id: str) -> Article:
        pos = self.catalog.position(article_id)
        if pos is None or not self.catalog.alive[pos]:
            raise ArticleNotFoundError(article_id)
        return self.catalog.articles[pos]

    def __contains__(self, article_id: object) -> bool:
        pos = self.catalog.position(article_id) if isinstance(article_id, str) else None
        return pos is not None and bool(self.catalog.alive[pos])

    # -- related ------------------------------------------------------------------------------
    def related(
        self, article_id: str, k: int = 6, *, filters: Filters | None = None, **overrides: Any
    ) -> list[Related]:
        """Related articles for an indexed (or live-upserted) article: a lookup of precomputed candidates
        plus re-ranking, widening to a real search only when filters or duplicates leave fewer than k."""
        pos = self.catalog.position(article_id)
        if pos is None or not self.catalog.alive[pos]:
            raise ArticleNotFoundError(article_id)
        source = self.catalog.source(pos)
        query_lex = self.catalog.lexical_rows(np.array([pos]))
        return self._related(
            source, query_lex, k, filters or Filters(), overrides, exclude=[pos], precomputed=pos,
            source_article=lambda: self.catalog.articles[pos], source_id=article_id,
        )  # fmt: skip

    def resolve_url(self, url: str) -> str:
        """The id of the article at ``url`` (its ``canonical_url`` or ``url``, normalised the way this version
        was built: tracking parameters, AMP variants, case, ports and slashes do not matter)."""
        key = normalize_url(url, self.catalog.articles.tracking)
        pos = self.catalog.url_position(key) if key else None
        if pos is None:
            raise ArticleNotFoundError(key or url, what="no article with URL")
        return self.catalog.articles.ids[pos]

    def related_to_article(
        self, draft: Article, k: int = 6, *, filters: Filters | None = None, **overrides: Any
    ) -> list[Related]:
        """For a draft or an article not yet indexed: embed it now (needs the model).

        Only the first :data:`DRAFT_TEXT_LIMIT` characters of its summary and body are read: the model reads a few
        hundred words anyway, and a draft is public input (80 concurrent 600 KB drafts took a service from 0.95 to
        1.76 GB before this limit, mostly in the TF-IDF transform and the shingle sets)."""
        draft = replace(draft, summary=draft.summary[:DRAFT_TEXT_LIMIT], body=draft.body[:DRAFT_TEXT_LIMIT])
        text = embedding_text(draft, strategy=self.text_strategy, lead_words=self.lead_words)
        vector = self.embedder.encode([text])[0]
        source = Source(
            vector=vector,
            signature=minhash_signatures([dedup_text(draft.title, draft.body)])[0],
            published=draft.published_at.timestamp() if draft.published_at else float("nan"),
            section=draft.section.lower() if draft.section else None,
            tags=frozenset(t.lower() for t in draft.tags),
        )
        query_lex = self.lexical.transform([lexical_text(draft)])
        own = self.catalog.position(draft.id)
        return self._related(
            source, query_lex, k, filters or Filters(), overrides, exclude=[own] if own is not None else [],
            source_article=lambda: draft, source_id=draft.id if own is not None else None,
        )  # fmt: skip

    def _candidate_pool(self, source: Source, query_lex: sp.csr_matrix, n: int, precomputed: int | None) -> np.ndarray:
        """First round for an indexed article: its precomputed lists (a lookup), else (or widened) a FAISS search
        plus a lexical scan for the top ``n`` of each retriever; live articles are picked the same way."""
        base_n = self.catalog.base_count
        live = self.catalog.live_candidates(source.vector, query_lex, max(n, self.config.candidates))
        parts: list[np.ndarray] = [live]
        sem = self.neighbors["semantic"]
        if precomputed is not None and precomputed < base_n and n <= max(sem.shape[1], self.config.candidates):
            parts.append(np.asarray(sem[precomputed]))
            parts.append(np.asarray(self.neighbors["lexical"][precomputed]))
        else:
            if base_n:
                _, positions = self.store.search_positions(source.vector, min(n, base_n))
                parts.append(positions[0])
                parts.append(self.lexical.top(query_lex, n))
        pool = np.unique(np.concatenate([p.astype(np.int64) for p in parts]))
        if len(pool) and pool[-1] >= self.catalog.size:
            raise DamagedIndexError(
                f"{self.path}: a precomputed candidate list points past the last article ({int(pool[-1])} of "
                f"{self.catalog.size}); the version's files are damaged: roll back or rebuild"
            )
        return pool[pool >= 0]

    def _related(
        self,
        source: Source,
        query_lex: sp.csr_matrix,
        k: int,
        filters: Filters,
        overrides: dict[str, Any],
        *,
        exclude: list[int],
        source_article: Callable[[], Article],
        precomputed: int | None = None,
        source_id: str | None = None,
    ) -> Box:
        if k < 1:
            raise ValueError("k must be at least 1")
        config = self.config.with_overrides(**overrides) if overrides else self.config
        if config.window_days and not math.isnan(source.published):
            from datetime import datetime, timedelta, timezone

            centre = datetime.fromtimestamp(source.published, tz=timezone.utc)
            window = timedelta(days=config.window_days)
            since = max(filter(None, [filters.since, centre - window]))
            until = min(filter(None, [filters.until, centre + window]))
            filters = Filters(
                filters.sections,
                filters.exclude_sections,
                filters.tags,
                filters.language,
                filters.exclude_ids,
                since,
                until,
            )
        catalog = self.catalog
        blocked = self._unrecommendable.mask(catalog, self.editorial)
        if source_id is not None:  # articles editors never want shown with this one
            exclude = exclude + [
                p for p in map(catalog.position, self.editorial.blocked_with(source_id)) if p is not None
            ]
        restricted = filters.active or filters.exclude_ids or blocked is not None or len(exclude) > 1
        mask = catalog.eligible(filters, exclude) if restricted else None
        if mask is not None and blocked is not None:
            mask &= ~blocked[: len(mask)]
        pins = self._pins(source_id, filters, exclude, blocked)
        n = max(config.candidates, 2 * k)
        story = self._story_shingles(source_article)
        while True:
            if mask is not None and mask.sum() <= _EXHAUSTIVE_LIMIT and (filters.active or n > config.candidates):
                pool = np.flatnonzero(mask)
                exhaustive = True
            else:
                pool = self._candidate_pool(source, query_lex, n, precomputed)
                exhaustive = n >= catalog.size
                if mask is not None:
                    pool = pool[mask[pool]]
                else:
                    pool = pool[catalog.alive[pool]]
                    pool = pool[~np.isin(pool, exclude)]
            candidates = catalog.gather(pool, source, query_lex)
            _check_scores(self.path, candidates.semantic)
            items = rank(
                source, candidates, config, k, relevance=self._relevance(candidates, query_lex),
                explain=lambda picks, c=candidates: self.lexical.top_terms_many(query_lex, c.lexical_rows[picks]),
                jaccard=lambda a, b, c=candidates: shingle_jaccard(story(a if a < 0 else int(c.positions[a])), story(int(c.positions[b]))),
            )  # fmt: skip
            # A box the floor left short is final: a wider search finds only weaker candidates.
            if len(items) + items.below_floor >= k or exhaustive:
                ranked = [self._to_related(item) for item in items]
                boxed = self._with_pins(pins, ranked, source, query_lex, config, k)
                return self._finish(boxed, source, config, k, filters, exclude, blocked, items.below_floor)
            n = max(n * 4, 4 * config.candidates)

    def _relevance(self, candidates: Candidates, query_lex: sp.csr_matrix) -> np.ndarray | None:
        return self.relevance_model.score(candidates, query_lex) if self.relevance_model is not None else None

    def _finish(
        self,
        kept: list[Related],
        source: Source,
        config: RankingConfig,
        k: int,
        filters: Filters,
        exclude: list[int],
        blocked: np.ndarray | None,
        below: int,
    ) -> Box:
        if config.fill == "none" or len(kept) >= k:
            return Box(kept, below)
        eligible = self.catalog.eligible(filters, exclude)
        if blocked is not None:
            eligible &= ~blocked[: len(eligible)]
        return filled(self.catalog, kept, config.fill, source.section, eligible, k, below)

    def _pins(
        self, source_id: str | None, filters: Filters, exclude: list[int], blocked: np.ndarray | None
    ) -> list[int]:
        if source_id is None or not self.editorial.pins_for(source_id):
            return []
        eligible = self.catalog.eligible(filters, exclude)
        return pinned_positions(self.catalog, self.editorial, source_id, eligible, blocked)

    def _with_pins(
        self,
        pins: list[int],
        ranked: list[Related],
        source: Source,
        query_lex: sp.csr_matrix,
        config: RankingConfig,
        k: int,
    ) -> list[Related]:
        if not pins:
            return ranked
        pinned = self.catalog.gather(np.asarray(pins, dtype=np.int64), source, query_lex)
        return pinned_first(self.catalog, pinned, self._relevance(pinned, query_lex), config.semantic_weight, ranked, k)

    def _story_shingles(self, source_article: Callable[[], Article]) -> Callable[[int], frozenset[bytes]]:
        """Shingle sets by catalog position (``-1`` = the source) for one request, kept across widening rounds:
        texts are read and shingled only for the few pairs whose MinHash estimate is too close to the threshold
        to trust (``ranking.DEDUP_BAND``)."""
        grams: dict[int, frozenset[bytes]] = {}

        def of(position: int) -> frozenset[bytes]:
            if position not in grams:
                article = source_article() if position < 0 else self.catalog.articles[position]
                grams[position] = story_shingles(article.title, article.body)
            return grams[position]

        return of

    def _to_related(self, item: RankedItem) -> Related:
        return Related(self.catalog.articles[item.position], item.score, item.reasons, item.relevance)

    def first_round(self, article_id: str) -> tuple[Source, sp.csr_matrix, Candidates]:
        """An indexed article's first-round candidates (its precomputed lists and live articles; alive, never
        itself), as ranking sees them: what :mod:`recommender.calibration` learns relevance from."""
        pos = self.catalog.position(article_id)
        if pos is None or not self.catalog.alive[pos]:
            raise ArticleNotFoundError(article_id)
        source = self.catalog.source(pos)
        query_lex = self.catalog.lexical_rows(np.array([pos]))
        pool = self._candidate_pool(source, query_lex, self.config.candidates, pos)
        pool = pool[self.catalog.alive[pool] & (pool != pos)]
        return source, query_lex, self.catalog.gather(pool, source, query_lex)

    # -- live changes -------------------------------------------------------------------------
    def upsert(self, article: Article) -> bool:
        """Make an article recommendable now (and give it related articles); True when it is new."""
        return self.upsert_many([article])[0]

    def upsert_many(
        self,
        articles: list[Article],
        *,
        known: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
        reuse: Recommender | None = None,
    ) -> list[bool]:
        """Batch form of :meth:`upsert` (one model call, one catalog append), used when replaying the change log.

        ``known``: vector and signature of some articles (by index), made under this version's embedding key (the
        change log keeps them), so they are not embedded again. ``reuse``: the version being replaced; its live
        rows with the same text keep their vector and signature, so a reload re-embeds nothing it already
        embedded (only the TF-IDF rows follow the new vocabulary)."""
        if not articles:
            return []
        vectors, signatures = self.prepare(articles, known=known, reuse=reuse)
        return self.add_prepared(articles, vectors, signatures)

    def prepare(
        self,
        articles: list[Article],
        *,
        known: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
        reuse: Recommender | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vectors and MinHash signatures for ``articles`` (see :mod:`.live_vectors`). Reads nothing that a
        concurrent live change modifies, so a service embeds before it takes any lock."""
        previous = reuse.catalog if reuse is not None and self._same_embedding(reuse) else None
        vectors, signatures, self.last_embedded = live_vectors(
            articles, dimension=self.store.dimension, signature_width=self.catalog.signature_width, known=known,
            previous=previous, embedder=lambda: self.embedder, text_strategy=self.text_strategy, lead_words=self.lead_words,
        )  # fmt: skip
        return vectors, signatures

    def add_prepared(self, articles: list[Article], vectors: np.ndarray, signatures: np.ndarray) -> list[bool]:
        """Add (or replace) articles whose vectors and signatures are made: the TF-IDF rows follow this version's
        vocabulary, then one catalog append. True for each article that is new."""
        lexical_rows = self.lexical.transform([lexical_text(a) for a in articles])
        created: list[bool] = []
        seen: set[str] = set()
        for article in articles:
            created.append(article.id not in self and article.id not in seen)
            seen.add(article.id)
        self.catalog.add_many(articles, vectors, signatures, lexical_rows)
        return created

    @property
    def embedding_key(self) -> str:
        """How this version's vectors were made (model, backend, text, length), as a short digest: a vector
        logged under the same key is one this version would make from the same text."""
        key = self.manifest.extra.get("embedding") or {
            "model": self.manifest.model,
            "dimension": self.manifest.dimension,
        }
        return hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=8).hexdigest()

    def _same_embedding(self, other: "Recommender") -> bool:
        """Live rows of ``other`` were embedded by the same model from the same text as this version would."""
        return (
            other.manifest.model == self.manifest.model
            and other.text_strategy == self.text_strategy
            and other.lead_words == self.lead_words
            and other.store.dimension == self.store.dimension
        )

    @property
    def wal_seq(self) -> int:
        """Last write-ahead-log entry folded into this version by its build."""
        return int(self.manifest.extra.get("wal_seq", 0) or 0)

    def replay(self, entries: Iterable[Change], *, reuse: Recommender | None = None) -> int:
        """Apply logged changes newer than this version, by the log's rule (:func:`~recommender.changelog.latest`).
        Upserts logged with a vector under this version's embedding key are not embedded again (``reuse``: see
        :meth:`upsert_many`)."""
        final = latest(e for e in entries if e.seq > self.wal_seq)
        upserts = [e for e in final.values() if e.op == "upsert" and e.article is not None]
        key = self.embedding_key
        known = {
            i: (e.vector, e.signature)
            for i, e in enumerate(upserts)
            if e.embedding == key and e.vector is not None and e.signature is not None
        }
        self.upsert_many([e.article for e in upserts if e.article is not None], known=known, reuse=reuse)
        for e in final.values():
            if e.op == "delete":
                self.delete(e.article_id)
            elif e.op == "editorial" and e.editorial is not None:
                self.editorial = self.editorial.apply(e.editorial)
        self.replay_embedded = self.last_embedded if upserts else 0
        return len(final)

    def change_editorial(self, change: EditorialChange) -> Editorial:
        """Apply one editorial change (pins, blocks) at once; returns the new state."""
        self.editorial = self.editorial.apply(change)
        return self.editorial

    def delete(self, article_id: str) -> bool:
        return self.catalog.remove(article_id)
