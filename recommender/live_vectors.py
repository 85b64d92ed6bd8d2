"""Vectors and MinHash signatures for articles written live: made once, reused wherever they already exist.

A restart replays the change log and a reload re-applies live writes to the new version; embedding them again
would cost a model call per article (seconds per hundred on CPU). A vector is reused when it was made the same way
from the same text: logged with the version's embedding key, or a live row of the version being replaced whose
text is unchanged and whose model and text settings are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from .dedup import dedup_text, minhash_signatures
from .text import embedding_text

if TYPE_CHECKING:
    from .article import Article
    from .catalog import Catalog
    from .embedding import Embedder

__all__ = ["live_vectors"]


def live_vectors(
    articles: list[Article],
    *,
    dimension: int,
    signature_width: int,
    known: Mapping[int, tuple[np.ndarray, np.ndarray]] | None,
    previous: Catalog | None,
    embedder: Callable[[], Embedder],
    text_strategy: str,
    lead_words: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(vectors, signatures, embedded)``: ``known`` rows (by index) first, then unchanged live rows of
    ``previous`` (None when it was embedded differently), the rest embedded (``embedded`` of them)."""
    vectors = np.zeros((len(articles), dimension), dtype=np.float32)
    signatures = np.zeros((len(articles), signature_width), dtype=np.uint32)
    found: set[int] = set()
    for i, (vector, signature) in (known or {}).items():
        if vector.shape == (dimension,) and signature.shape == (signature_width,):
            vectors[i], signatures[i] = vector, signature
            found.add(i)
    if previous is not None:
        rows, positions = [], []
        for i, article in enumerate(articles):
            pos = previous.position(article.id)
            if i in found or pos is None or pos < previous.base_count:
                continue
            if previous.articles[pos].content_hash() == article.content_hash():
                rows.append(i)
                positions.append(pos)
        if rows:
            vectors[rows] = previous.vectors(np.asarray(positions, dtype=np.int64))
            signatures[rows] = previous.signatures(np.asarray(positions, dtype=np.int64))
            found.update(rows)
    todo = [i for i in range(len(articles)) if i not in found]
    if todo:
        texts = [embedding_text(articles[i], strategy=text_strategy, lead_words=lead_words) for i in todo]
        vectors[todo] = embedder().encode(texts)
        signatures[todo] = minhash_signatures([dedup_text(articles[i].title, articles[i].body) for i in todo])
    return vectors, signatures, len(todo)
