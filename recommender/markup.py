"""Markup in CMS fields: HTML reduced to plain paragraphs, so text from a CMS is stored and shown as text."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser as HTMLParser

__all__ = ["html_to_text"]

_TAG_HINT = re.compile(r"<[a-zA-Z/!]|&[#a-zA-Z0-9]+;")
_BLOCK_END = re.compile(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|blockquote|tr|section|article|header|footer|figure)\s*>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


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


def _normalise(text: str) -> str:
    if not text:
        return ""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
