"""The options of a related request, defined once: their types, limits, defaults and help text.

The HTTP API (query parameters and draft bodies), the CLI's flags and ranking configuration files all validate
through the types here, so a limit or a message changes in one place. :class:`RelatedOptions` is one request's
normalised options: equal requests compare equal and share a cache entry and an ETag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from .candidates import Filters

__all__ = [
    "MAX_K",
    "MAX_LANGUAGE_LENGTH",
    "Count",
    "Days",
    "FILL_POLICIES",
    "Fill",
    "Names",
    "RelatedOptions",
    "Share",
    "UtcDatetime",
    "numbers_from_text",
    "to_utc",
]

MAX_K = 50
#: Longest ``language`` option: a BCP 47 tag ("en", "pt-BR", "zh-Hant-TW") fits in 35 characters.
MAX_LANGUAGE_LENGTH = 35
#: Longest value of a comma-separated option (ids to exclude can be many).
_MAX_NAMES_LENGTH = 20_000


def to_utc(value: datetime | None) -> datetime | None:
    """Aware UTC; a naive time means UTC. A time with no UTC equivalent (year 1 at +18:00, year 9999 at
    -18:00) is clamped to the first or last representable instant: as a bound that is the same as no bound."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


def _json_number(value: Any) -> Any:
    # JSON numbers only: pydantic's lax mode would also take "5" or true, which the schema calls invalid; strict
    # mode would refuse 5.0, which JSON Schema calls a valid integer. Text (query strings, environment variables)
    # is converted before it gets here, by ``numbers_from_text``.
    if isinstance(value, (bool, str, bytes)):
        raise ValueError("expected a number")  # noqa: TRY004 - pydantic reports ValueError, not TypeError
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Input should be a finite number")
    return value


def numbers_from_text(values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``values`` with the text of the number options in ``names`` read as numbers ("5" -> 5, "0.3" -> 0.3):
    how query strings and environment variables reach the number types above. Text that is not a number is left
    as it is, for validation to refuse with the option's name."""
    out = dict(values)
    for name in names:
        text = out.get(name)
        if isinstance(text, str):
            try:
                out[name] = int(text)
            except ValueError:
                try:
                    out[name] = float(text)
                except ValueError:
                    pass
    return out


def _names(value: Any) -> tuple[str, ...]:
    """Comma-separated string or list -> sorted unique non-empty names (sorted: the cache key is order-free)."""
    if value is None:
        return ()
    if isinstance(value, str):
        if len(value) > _MAX_NAMES_LENGTH:
            raise ValueError(f"at most {_MAX_NAMES_LENGTH} characters")
        value = value.split(",")
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a comma-separated string or a list of strings")  # noqa: TRY004
    if sum(len(v) for v in value) > _MAX_NAMES_LENGTH:
        raise ValueError(f"at most {_MAX_NAMES_LENGTH} characters")
    return tuple(sorted({v.strip() for v in value if v and v.strip()}))


def _language(value: Any) -> Any:
    if value is None:
        return None
    language = value.strip().lower() if isinstance(value, str) else ""
    if not 0 < len(language) <= MAX_LANGUAGE_LENGTH:
        raise ValueError(f"must be a language code of 1 to {MAX_LANGUAGE_LENGTH} characters, e.g. en")
    return language


def _iso_datetime(value: Any) -> Any:
    """An ISO-8601 string (``Z`` or an offset; a naive time means UTC) to an aware datetime. A number is refused
    (pydantic would read it as a Unix timestamp; the contract says ISO-8601), as is anything unparseable."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            float(text)
        except ValueError:
            pass
        else:
            raise ValueError("expected an ISO-8601 date-time, e.g. 2026-08-01T12:00:00Z")
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 date: {value!r:.60}") from None
    raise ValueError("expected an ISO-8601 date-time, e.g. 2026-08-01T12:00:00Z")


#: A number of days: positive, at most a century.
Days = Annotated[float, Field(gt=0, le=36_500, allow_inf_nan=False), BeforeValidator(_json_number)]
#: A share or weight from 0 to 1.
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False), BeforeValidator(_json_number)]
#: How many items a box holds.
Count = Annotated[int, Field(ge=1, le=MAX_K), BeforeValidator(_json_number)]
#: A comma-separated string or a list of names.
Names = Annotated[
    tuple[str, ...],
    BeforeValidator(_names),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": _MAX_NAMES_LENGTH},
                {"type": "array", "items": {"type": "string"}},
            ]
        }
    ),
]
#: A date-time given as an ISO-8601 string, as aware UTC (a naive one means UTC).
UtcDatetime = Annotated[datetime, BeforeValidator(_iso_datetime), AfterValidator(to_utc)]
#: How a box the relevance floor left short is filled (items marked ``fallback``).
FILL_POLICIES = ("none", "section_recent", "recent")
Fill = Annotated[Literal["none", "section_recent", "recent"], Field(description="none, section_recent or recent")]
Language = Annotated[
    str | None,
    BeforeValidator(_language),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_LANGUAGE_LENGTH}, {"type": "null"}]}),
]


class RelatedOptions(BaseModel):
    """What a related request may ask for, beyond which article."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Options whose value is a list of names (comma-separated in a query string, a list in JSON).
    LIST_OPTIONS: ClassVar[tuple[str, ...]] = ("section", "exclude_section", "tag", "exclude")
    NUMBER_OPTIONS: ClassVar[tuple[str, ...]] = ("k", "freshness", "diversity", "window", "min_relevance")

    k: Count = Field(6, description="How many related articles (1 to 50).")
    section: Names = Field((), description="Only these sections (comma-separated).")
    exclude_section: Names = Field((), description="Never these sections (comma-separated).")
    tag: Names = Field((), description="Only articles with one of these tags (comma-separated).")
    exclude: Names = Field((), description="Never these article ids (comma-separated).")
    since: UtcDatetime | None = Field(None, description="Only articles published at or after (ISO-8601).")
    until: UtcDatetime | None = Field(None, description="Only articles published at or before (ISO-8601).")
    freshness: Days | None = Field(None, description="Half-life in days of a recency decay.")
    diversity: Share | None = Field(None, description="0 = pure relevance, 1 = most varied.")
    language: Language = Field(
        None, description="Only articles in this language (code as stored in the articles, e.g. en; any case)."
    )
    window: Days | None = Field(
        None,
        description="Only articles published within this many days of the source (no window for one without a date).",
    )
    min_relevance: Share | None = Field(
        None,
        description="Show only articles at least this likely to be related (calibrated relevance, 0 to 1): the box "
        "can be shorter than k, or empty. Unset: the configuration's floor.",
    )
    fill: Fill | None = Field(
        None,
        description="Fill a box the floor left short: none, section_recent (recent articles of the source's "
        "section) or recent. Fill items carry fallback: true. Unset: the configuration's (none).",
    )

    @classmethod
    def from_text(cls, values: Mapping[str, Any]) -> RelatedOptions:
        """From text values (a query string's parameters): numbers are read as numbers first."""
        return cls.model_validate(numbers_from_text(values, cls.NUMBER_OPTIONS))

    def filters(self) -> Filters:
        return Filters(
            sections=self.section,
            exclude_sections=self.exclude_section,
            tags=self.tag,
            language=self.language,
            exclude_ids=frozenset(self.exclude),
            since=self.since,
            until=self.until,
        )

    def overrides(self) -> dict[str, Any]:
        """The options that change the ranking configuration, under its field names."""
        pairs = (
            ("freshness_half_life_days", self.freshness),
            ("diversity", self.diversity),
            ("window_days", self.window),
            ("min_relevance", self.min_relevance),
            ("fill", self.fill),
        )
        return {name: value for name, value in pairs if value is not None}

    def key(self) -> tuple[Any, ...]:
        return tuple((name, _key(getattr(self, name))) for name in type(self).model_fields)


def _key(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
