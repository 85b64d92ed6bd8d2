"""A/B variants: which ranking a visitor gets, decided by a hash of the visitor id, stable across requests,
processes and restarts.

Bucketing. A visitor's position in the hash space is ``h = blake2b(salt NUL visitor)`` read as a 64-bit integer,
``h / 2**64`` in [0, 1). Variants own consecutive ranges of that space in the order they are configured: with shares
``s_1..s_n`` variant ``i`` owns ``[S_(i-1), S_i)`` where ``S_i = s_1 + ... + s_i`` (boundaries are computed in
integers, ``floor(S_i * 2**64)``, so the ranges tile the space exactly whatever the float rounding). The salt
names the experiment: a new salt reshuffles everyone (start a new experiment), the same salt never does.

Which visitors move when shares change: exactly those whose ``h`` lies in a range that belongs to a different
variant under the new shares than under the old; :func:`moved_share` computes that fraction. It can never be less
than the total share gained by the variants that grow (:func:`minimal_moved_share`, the total variation distance).
Cumulative ranges reach that minimum whenever the change moves share between neighbours in the configured order:

- two variants (any ramp, e.g. 90/10 -> 50/50 -> 0/100): only the visitors between the old and the new boundary
  move, from the variant that shrank to the one that grew; nobody else changes variant;
- a new variant added last, taking its share from the variant listed before it; a variant retired by giving its
  share to a neighbour.

Moving share between variants that are not neighbours shifts the boundaries of the ones between them, so some of
their visitors move too (e.g. ``a, b, c`` at 1/3 each -> ``c`` grows to 1/2 taking 1/12 from each of ``a`` and ``b``:
1/6 of visitors must move, 1/4 do). No stateless rule avoids this for every change: with three or more variants,
minimal movement for all pairwise trades would need each variant's visitors to depend on its own share only, and
such sets cannot tile the space for every combination of shares. So list the variants you will ramp against each
other next to each other, check a planned change with :func:`moved_share`, and give a new experiment a new salt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from ..ranking import RankingConfig

__all__ = [
    "DEFAULT_VARIANT",
    "VARIANT_PATTERN",
    "Experiment",
    "Variant",
    "VariantSpec",
    "bucket",
    "check_shares",
    "check_variants",
    "minimal_moved_share",
    "moved_share",
]

#: The variant every visitor gets when no variants are configured (and requests without a visitor get the first).
DEFAULT_VARIANT = "control"
#: Variant names: short, safe in URLs, file names, metric labels and reports.
VARIANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(VARIANT_PATTERN)
_SPACE = 1 << 64
#: Shares may miss 1 by this much (0.1 + 0.2 + 0.7 in floats); the ranges are normalised to tile the space.
SHARE_TOLERANCE = 1e-6


def bucket(salt: str, visitor: str) -> int:
    """The visitor's position in the hash space, an integer in [0, 2**64)."""
    digest = hashlib.blake2b(f"{salt}\x00{visitor}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def check_shares(shares: Mapping[str, float]) -> None:
    """ValueError naming the problem unless ``shares`` are valid variant names with shares in [0, 1] adding up to 1."""
    if not shares:
        raise ValueError("at least one variant is needed")
    for name, share in shares.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"variant name {name!r} must match {VARIANT_PATTERN}")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ValueError(f"share of {name!r} must be a number from 0 to 1, got {share!r}")
    total = sum(shares.values())
    if abs(total - 1) > SHARE_TOLERANCE:
        raise ValueError(
            f"shares must add up to 1, got {total:.6g} ({', '.join(f'{n}={s:g}' for n, s in shares.items())})"
        )


def _boundaries(shares: Sequence[float]) -> list[int]:
    """Upper ends of the ranges as integers; the last one is exactly 2**64 (the ranges tile the whole space)."""
    total = float(sum(shares))
    out, running = [], 0.0
    for share in shares:
        running += share
        out.append(min(_SPACE, int(running / total * _SPACE)))
    out[-1] = _SPACE
    return out


def _segments(shares: Mapping[str, float]) -> list[tuple[int, int, str]]:
    names = list(shares)
    ends = _boundaries([shares[n] for n in names])
    starts = [0, *ends[:-1]]
    return [(a, b, n) for a, b, n in zip(starts, ends, names) if b > a]


def moved_share(old: Mapping[str, float], new: Mapping[str, float]) -> float:
    """The exact fraction of visitors whose variant changes when the shares go from ``old`` to ``new`` (same salt).
    Variants missing from one side have share 0 there."""
    check_shares(old)
    check_shares(new)
    a, b = _segments(old), _segments(new)
    cuts = sorted({0, _SPACE, *(x for s in a for x in s[:2]), *(x for s in b for x in s[:2])})
    moved = 0
    for lo, hi in pairwise(cuts):
        if _owner(a, lo) != _owner(b, lo):
            moved += hi - lo
    return moved / _SPACE


def minimal_moved_share(old: Mapping[str, float], new: Mapping[str, float]) -> float:
    """The fewest visitors any assignment could move: the share gained by the variants that grow."""
    names = set(old) | set(new)
    return sum(max(0.0, new.get(n, 0.0) - old.get(n, 0.0)) for n in names)


def _owner(segments: list[tuple[int, int, str]], point: int) -> str:
    for start, end, name in segments:
        if start <= point < end:
            return name
    raise AssertionError("the ranges tile the space")  # pragma: no cover


class VariantSpec(BaseModel):
    """One variant as configured (``RECOMMENDER_VARIANTS``): its share of visitors and its ranking file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(ge=0, le=1, allow_inf_nan=False, description="Share of visitors, 0 to 1.")
    config: Path | None = Field(None, description="JSON/TOML ranking configuration; unset: the service's own.")


def check_variants(specs: Mapping[str, VariantSpec]) -> None:
    """ValueError naming the problem: bad names or shares (:func:`check_shares`), or an unreadable ranking file."""
    from ..errors import ConfigurationError
    from ..ranking import RankingConfig

    check_shares({name: spec.share for name, spec in specs.items()})
    for name, spec in specs.items():
        if spec.config is not None:
            try:
                RankingConfig.from_file(spec.config)
            except ConfigurationError as exc:
                raise ValueError(f"variant {name!r}: {exc}") from None


@dataclass(frozen=True)
class Variant:
    """One arm: its name, its share of visitors and its ranking configuration (None: the service's own)."""

    name: str
    share: float
    config: RankingConfig | None = field(default=None, compare=False)
    config_path: Path | None = None

    def overrides(self) -> dict[str, Any]:
        """The ranking fields this variant sets (all of its configuration's), for ``Recommender.related``."""
        return self.config.to_dict() if self.config is not None else {}

    @property
    def key(self) -> str:
        """Names what the variant serves, for cache keys, ETags and request ids: its name and, when it has a
        configuration, a digest of it (a variant whose file changed between restarts serves other lists, and an
        ETag a client kept from before must not match them)."""
        if self.config is None:
            return self.name
        text = repr(sorted(self.overrides().items())).encode()
        return f"{self.name}:{hashlib.blake2b(text, digest_size=6).hexdigest()}"


class Experiment:
    """The configured variants and the bucketing rule. ``assign(None)`` is the default variant (the first)."""

    def __init__(self, variants: Sequence[Variant], salt: str) -> None:
        check_shares({v.name: v.share for v in variants})
        self.variants = tuple(variants)
        self.salt = salt
        self._by_name = {v.name: v for v in self.variants}
        self._segments = _segments({v.name: v.share for v in self.variants})

    @classmethod
    def from_shares(cls, shares: Mapping[str, float], salt: str = "related-v1") -> Experiment:
        return cls([Variant(name, float(share)) for name, share in shares.items()], salt)

    @classmethod
    def from_settings(cls, settings: Any) -> Experiment:
        """From ``settings.variants`` (name -> share and optional ranking file); none configured: one ``control``
        variant with the service's own ranking."""
        from ..ranking import RankingConfig

        specs = settings.variants or {}
        if not specs:
            return cls([Variant(DEFAULT_VARIANT, 1.0)], settings.experiment_salt)
        variants = []
        for name, spec in specs.items():
            config = RankingConfig.from_file(spec.config) if spec.config is not None else None
            variants.append(Variant(name, spec.share, config, spec.config))
        return cls(variants, settings.experiment_salt)

    @property
    def default(self) -> str:
        return self.variants[0].name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    @property
    def shares(self) -> dict[str, float]:
        return {v.name: v.share for v in self.variants}

    def variant(self, name: str) -> Variant:
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"unknown variant {name!r}; configured: {', '.join(self.names)}") from None

    def assign(self, visitor: str | None) -> str:
        """The visitor's variant; no visitor (or an empty one): the default variant."""
        if not visitor:
            return self.default
        point = bucket(self.salt, visitor)
        for _start, end, name in self._segments:
            if point < end:
                return name
        raise AssertionError("the ranges tile the space")  # pragma: no cover

    def overrides(self, name: str) -> dict[str, Any]:
        return self.variant(name).overrides()

    def key(self, name: str) -> str:
        return self.variant(name).key
