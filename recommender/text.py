"""Text preparation: CMS HTML to plain text, and an article to the text the model embeds."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from selectolax.lexbor import LexborHTMLParser as HTMLParser

if TYPE_CHECKING:
    from .article import Article

__all__ = ["html_to_text", "embedding_text", "lexical_text", "TEXT_STRATEGIES"]

_TAG_HINT = re.compile(r"<[a-zA-Z/!]|&[#a-zA-Z0-9]+;")
_BLOCK_END = re.compile(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|blockquote|tr|section|article|header|footer|figure)\s*>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")

# Measured on ecbplus-dev (nDCG@10 of raw embedding cosine, see README "Text preparation"):
# a lead window of title + summary + body beats title-only and whole-body chunk averaging.
TEXT_STRATEGIES = ("lead", "title")


def html_to_text(value: str) -> str:
    """Reduce CMS HTML to paragraphs of plain text; scripts and styles are dropped, entities decoded."""
    if not value or not _TAG_HINT.search(value):
        return _normalise(value)
    marked = _BLOCK_END.sub(lambda m: m.group(0) + "\n\n", value)
    tree = HTMLParser(marked)
    for node in tree.css("script, style, noscript, template, iframe"):
        node.decompose()
    root = tree.body or tree.root
    text = root.text(separator="") if root is not None else ""
    return _normalise(text)


def _normalise(text: str) -> str:
    if not text:
        return ""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


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
