"""Text preparation: an article to the text the model embeds and the text the lexical model reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .article import Article

__all__ = ["TEXT_STRATEGIES", "embedding_text", "lexical_text"]

# Measured on ecbplus-dev (nDCG@10 of raw embedding cosine, see README "Text preparation"):
# a lead window of title + summary + body beats title-only and whole-body chunk averaging.
TEXT_STRATEGIES = ("lead", "title")


def embedding_text(article: "Article", *, strategy: str = "lead", lead_words: int = 120) -> str:
    """What the model sees. The model reads at most 256 word pieces, so we choose which words fill them
    instead of letting the tokenizer cut blindly: headline, standfirst, then the lead of the body."""
    if strategy not in TEXT_STRATEGIES:
        raise ValueError(f"text strategy must be one of {', '.join(TEXT_STRATEGIES)}, got {strategy!r}")
    title = article.title.strip()
    if strategy == "title":
        return title
    parts = [title]
    summary = article.summary.strip()
    if summary and summary not in article.body:
        parts.append(summary)
    if article.body:
        words = article.body.split()
        parts.append(" ".join(words[:lead_words]))
    return "\n".join(p for p in parts if p)


def lexical_text(article: "Article") -> str:
    """The whole article for TF-IDF: names deep in the body are the strongest same-story signal."""
    return "\n".join(p for p in (article.title, article.title, article.summary, article.body) if p)
