"""Editorial control of the related box: pins, blocks and (with the ``expires_at`` article field) expiry.

* **pins**: for a source article, ids shown first, in the given order, when they exist and pass the request's
  filters;
* **blocks**: ids never recommended anywhere (a legal takedown), sections never recommended (``sponsored``), pairs
  never shown together. Blocks win over pins.

The state is part of each index version (``editorial.json``). It changes between builds through admin routes,
logged durably in the change log like article writes (:class:`EditorialChange`). A build takes the state from an
``editorial.json`` beside the export when there is one (the CMS then owns it), else carries the previous version's
forward, and folds the logged changes in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, FieldError

__all__ = ["EDITORIAL_KINDS", "MAX_PINS", "Editorial", "EditorialChange", "read_editorial"]

#: Pinned ids per source article: a box holds at most 50 items.
MAX_PINS = 50
EDITORIAL_KINDS = ("pins", "article", "section", "pair")


def _ids(value: Any, field_name: str, *, limit: int | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise FieldError(field_name, "expected a list of non-empty article ids")
    if limit is not None and len(value) > limit:
        raise FieldError(field_name, f"at most {limit} ids")
    seen: dict[str, None] = {}
    for v in value:
        seen.setdefault(v.strip(), None)
    return tuple(seen)


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class EditorialChange:
    """One logged change: ``kind`` pins (``value`` the ordered ids; empty removes the pins), or a block of an
    article, a section or a pair (``value`` True blocks, False lifts the block)."""

    kind: str
    target: tuple[str, ...]
    value: tuple[str, ...] | bool

    @property
    def key(self) -> str:
        """What the change is about: the change log keeps the last change per key (like per article id)."""
        return "editorial:" + self.kind + ":" + "\x1f".join(self.target)

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"kind": self.kind, "target": list(self.target), "value": value}

    @classmethod
    def from_dict(cls, data: Any) -> EditorialChange:
        if not isinstance(data, Mapping) or data.get("kind") not in EDITORIAL_KINDS:
            raise ValueError(f"not an editorial change: {str(data)[:100]}")
        target = tuple(data["target"])
        value = data["value"]
        return cls(data["kind"], target, tuple(value) if isinstance(value, list) else bool(value))


@dataclass(frozen=True)
class Editorial:
    pins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    blocked_ids: frozenset[str] = frozenset()
    blocked_sections: frozenset[str] = frozenset()  # lower case
    blocked_pairs: frozenset[tuple[str, str]] = frozenset()  # each pair sorted

    # -- reading ---------------------------------------------------------------------------------------
    def pins_for(self, source_id: str) -> tuple[str, ...]:
        return self.pins.get(source_id, ())

    def blocked_with(self, source_id: str) -> set[str]:
        """Ids never shown with ``source_id`` (its blocked pairs)."""
        return {b if a == source_id else a for a, b in self.blocked_pairs if source_id in (a, b)}

    @property
    def empty(self) -> bool:
        return not (self.pins or self.blocked_ids or self.blocked_sections or self.blocked_pairs)

    # -- changing --------------------------------------------------------------------------------------
    def apply(self, change: EditorialChange) -> Editorial:
        if change.kind == "pins":
            source = change.target[0]
            pins = dict(self.pins)
            if change.value:
                pins[source] = tuple(change.value)  # type: ignore[arg-type]
            else:
                pins.pop(source, None)
            return replace(self, pins=pins)
        if change.kind == "article":
            ids = set(self.blocked_ids)
            (ids.add if change.value else ids.discard)(change.target[0])
            return replace(self, blocked_ids=frozenset(ids))
        if change.kind == "section":
            sections = set(self.blocked_sections)
            (sections.add if change.value else sections.discard)(change.target[0].lower())
            return replace(self, blocked_sections=frozenset(sections))
        pairs = set(self.blocked_pairs)
        (pairs.add if change.value else pairs.discard)(_pair(*change.target))
        return replace(self, blocked_pairs=frozenset(pairs))

    def applied(self, changes: Iterable[EditorialChange]) -> Editorial:
        state = self
        for change in changes:
            state = state.apply(change)
        return state

    # -- files -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "pins": {source: list(ids) for source, ids in sorted(self.pins.items())},
            "blocks": {
                "articles": sorted(self.blocked_ids),
                "sections": sorted(self.blocked_sections),
                "pairs": [list(p) for p in sorted(self.blocked_pairs)],
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> Editorial:
        """Validate an editorial document (raises FieldError naming the path of the first bad value)."""
        if not isinstance(data, Mapping):
            raise FieldError("editorial", "expected a JSON object with 'pins' and 'blocks'")
        unknown = sorted(set(data) - {"pins", "blocks"})
        if unknown:
            raise FieldError(unknown[0], "unknown key; expected 'pins' and 'blocks'")
        pins_raw = data.get("pins") or {}
        if not isinstance(pins_raw, Mapping):
            raise FieldError("pins", "expected an object of source id -> list of ids")
        pins = {}
        for source, ids in pins_raw.items():
            pins[source] = _ids(ids, f"pins.{source}", limit=MAX_PINS)
        blocks = data.get("blocks") or {}
        if not isinstance(blocks, Mapping):
            raise FieldError("blocks", "expected an object with 'articles', 'sections' and 'pairs'")
        unknown = sorted(set(blocks) - {"articles", "sections", "pairs"})
        if unknown:
            raise FieldError(f"blocks.{unknown[0]}", "unknown key; expected 'articles', 'sections' and 'pairs'")
        articles = _ids(blocks.get("articles") or [], "blocks.articles")
        sections = _ids(blocks.get("sections") or [], "blocks.sections")
        pairs = set()
        for n, pair in enumerate(blocks.get("pairs") or []):
            ids = _ids(pair, f"blocks.pairs[{n}]")
            if len(ids) != 2:
                raise FieldError(f"blocks.pairs[{n}]", "expected two different article ids")
            pairs.add(_pair(*ids))
        return cls(
            pins=pins,
            blocked_ids=frozenset(articles),
            blocked_sections=frozenset(s.lower() for s in sections),
            blocked_pairs=frozenset(pairs),
        )


def read_editorial(path: Path) -> Editorial:
    """An editorial document from disk; a bad one is a ConfigurationError naming the file and the value."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{path}: not valid JSON: {exc}") from None
    try:
        return Editorial.from_dict(data)
    except FieldError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
