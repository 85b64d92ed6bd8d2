"""Related-article recommendations for news sites: hybrid semantic + lexical ranking over a FAISS index.

The public names below load their modules on first use (PEP 562), so ``import recommender`` (and the CLI's
``--help``) does not pay for numpy, scikit-learn, FAISS or torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .version import __version__

__all__ = [
    "Article",
    "ArticleNotFoundError",
    "BuildReport",
    "ConfigurationError",
    "Embedder",
    "FieldError",
    "Filters",
    "LoadError",
    "LoadResult",
    "RankingConfig",
    "Recommender",
    "RecommenderError",
    "Reject",
    "RejectsExceededError",
    "Related",
    "RelatedOptions",
    "Settings",
    "ValidationFailedError",
    "__version__",
    "build_index",
    "load_articles",
    "parse_article",
]

_HOME = {
    "Article": "article",
    "parse_article": "article",
    "ArticleNotFoundError": "errors",
    "ConfigurationError": "errors",
    "FieldError": "errors",
    "LoadError": "errors",
    "RecommenderError": "errors",
    "RejectsExceededError": "errors",
    "ValidationFailedError": "errors",
    "LoadResult": "loading",
    "Reject": "loading",
    "load_articles": "loading",
    "Filters": "candidates",
    "RankingConfig": "ranking",
    "RelatedOptions": "options",
    "Embedder": "embedding",
    "Recommender": "engine",
    "Related": "engine",
    "build_index": "build",
    "BuildReport": "build",
    "Settings": "settings",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'recommender' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
