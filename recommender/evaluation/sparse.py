"""The sparse-story protocol: a corpus where most stories have 0 to 3 follow-ups, as on a real site.

Benchmark corpora are dense (every ecbplus event has 10+ articles), so a box that always fills k slots looks
fine on them. From a labelled corpus, with a fixed seed: stories (a label value; articles without one are left
out, their relevance being unknown) are taken in sorted order of their key, and for each ``n = rng.randint(1, 3)``
of its articles are kept (``rng.sample`` of the sorted ids); every other article of the story is dropped from the
corpus. The distractors of a story are the other stories' kept articles; nothing else is added. Kept articles
keep the export's order. ``recommender evaluate --sparse-stories SEED`` applies it before indexing.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..article import Article

__all__ = ["sparse_stories", "story_key"]


def story_key(article: Article, field: str) -> str | None:
    """An article's story: the label value (a list label such as reuters' ``topics`` is its sorted set: the
    strict, exact-set grading); None when it has none."""
    value: Any = getattr(article, field, None) if field in Article.__dataclass_fields__ else article.extra.get(field)
    if value is None or value == "" or value == [] or value == ():
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        return "|".join(sorted(str(v) for v in value))
    return str(value)


def sparse_stories(articles: Sequence[Article], field: str, seed: int) -> list[Article]:
    """The articles the protocol keeps (see the module's docstring), in their original order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for article in articles:
        key = story_key(article, field)
        if key is not None:
            groups[key].append(article.id)
    rng = random.Random(seed)
    keep: set[str] = set()
    for key in sorted(groups):
        members = sorted(groups[key])
        keep.update(rng.sample(members, min(rng.randint(1, 3), len(members))))
    return [a for a in articles if a.id in keep]
