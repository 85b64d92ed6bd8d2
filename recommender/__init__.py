"""Related-article recommendations for news sites: hybrid semantic + lexical ranking over a FAISS index."""

from .version import __version__  # noqa: E402
from .article import Article, parse_article  # noqa: E402
from .errors import (  # noqa: E402
    ArticleNotFoundError,
    ConfigurationError,
    FieldError,
    LoadError,
    RecommenderError,
    RejectsExceededError,
    ValidationFailedError,
)
from .loading import LoadResult, Reject, load_articles  # noqa: E402
from .ranking import Filters, RankingConfig  # noqa: E402

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
    "Settings",
    "ValidationFailedError",
    "build_index",
    "load_articles",
    "parse_article",
    "__version__",
]


def __getattr__(name: str):  # heavy modules (torch, faiss) load only when used
    if name in ("Embedder",):
        from .embedding import Embedder

        return Embedder
    if name in ("Recommender", "Related"):
        from . import engine

        return getattr(engine, name)
    if name in ("build_index", "BuildReport"):
        from . import build

        return getattr(build, name)
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module 'recommender' has no attribute {name!r}")
