"""Request options, defined once (recommender.options): normalisation, validation naming the option, and the
same limits in the API, the CLI and ranking configuration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from recommender.errors import ConfigurationError
from recommender.options import RelatedOptions
from recommender.ranking import RankingConfig


def test_query_normalisation_shares_cache_entries() -> None:
    a = RelatedOptions(k=5, section="world, politics", exclude="b,a")
    b = RelatedOptions(k=5, section=["politics", "world"], exclude=["a", "b", "a"])
    assert a.key() == b.key()
    naive = RelatedOptions(k=5, since=datetime(2026, 8, 1))
    aware = RelatedOptions(k=5, since=datetime(2026, 8, 1, tzinfo=UTC))
    assert naive.key() == aware.key()
    assert RelatedOptions(k=6, freshness=7).overrides() == {"freshness_half_life_days": 7.0}
    assert RelatedOptions(k=6, language=" EN ").key() == RelatedOptions(k=6, language="en").key()
    assert RelatedOptions(k=6, language="en").key() != RelatedOptions(k=6, language="de").key()
    assert RelatedOptions(k=6, window=3).key() == RelatedOptions(k=6, window=3.0).key()
    assert RelatedOptions(k=6, window=3).key() != RelatedOptions(k=6).key()
    assert RelatedOptions(k=6, window=3).overrides() == {"window_days": 3.0}
    assert RelatedOptions(k=6, language="PT-br").filters().language == "pt-br"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"k": 0}, "k"),
        ({"k": 51}, "k"),
        ({"k": True}, "k"),
        ({"freshness": 0.0}, "freshness"),
        ({"freshness": float("nan")}, "freshness"),
        ({"diversity": 1.5}, "diversity"),
        ({"window": 0}, "window"),
        ({"window": -1.0}, "window"),
        ({"window": float("inf")}, "window"),
        ({"window": True}, "window"),
        ({"window": "7"}, "window"),
        ({"language": ""}, "language"),
        ({"language": " "}, "language"),
        ({"language": "x" * 36}, "language"),
        ({"language": 5}, "language"),
        ({"section": 5}, "section"),
        ({"exclude": "x" * 20_001}, "exclude"),
        ({"since": "1e10"}, "since"),
        ({"since": 1_700_000_000}, "since"),
        ({"until": "2026-02-30"}, "until"),
    ],
)
def test_validation_names_the_option(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RelatedOptions(**kwargs)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_query_strings_read_numbers_and_name_what_is_not_one() -> None:
    options = RelatedOptions.from_text({"k": "5", "diversity": "0.25", "window": "7", "section": "world"})
    assert (options.k, options.diversity, options.window, options.section) == (5, 0.25, 7.0, ("world",))
    for params, field in (({"k": "5x"}, "k"), ({"k": "1e400"}, "k"), ({"freshness": "nan"}, "freshness")):
        with pytest.raises(ValidationError) as caught:
            RelatedOptions.from_text(params)
        assert caught.value.errors()[0]["loc"] == (field,)


def test_ranking_configuration_uses_the_same_limits() -> None:
    """A request's diversity and a configuration file's diversity are checked by the same type."""
    with pytest.raises(ValidationError):
        RelatedOptions(diversity=1.5)
    with pytest.raises(ConfigurationError, match=r"^diversity: Input should be less than or equal to 1$"):
        RankingConfig.create(diversity=1.5)
    with pytest.raises(ConfigurationError, match=r"^window_days: Input should be greater than 0$"):
        RankingConfig().with_overrides(window_days=0)
    assert RankingConfig().with_overrides(**RelatedOptions(diversity=0.5, window=3).overrides()).window_days == 3.0
