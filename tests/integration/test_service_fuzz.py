"""Property-based fuzzing from the app's own OpenAPI schema (schemathesis): never a 500, responses match the schema.

Bounded (a fixed number of examples per operation, no shrinking deadline) so it stays well under a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from recommender.serving import LiveIndex
from recommender.settings import Settings
from service import create_app
from tests.support.server import ADMIN_TOKEN, copy_index

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (a dev dependency)")

MAX_EXAMPLES = 60


# The schema does not depend on the index, so it is read at collection time from an app whose LiveIndex is
# attached by the fixture below (schemathesis' lazy fixture loader does not work with this pytest).
SETTINGS = Settings(index_dir=Path("/nonexistent-fuzz-index"), admin_token=ADMIN_TOKEN, poll_interval=0)
# A LiveIndex of its own (never loaded): the app then starts no model load at collection, the fixture below
# attaches the real one.
APP = create_app(SETTINGS, live=LiveIndex(SETTINGS))
# 413 is the right answer to a body over the size limit, which over-long generated fields can produce.
_NEGATIVE_OK = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {"negative_data_rejection": {"expected-statuses": _NEGATIVE_OK}},
        # An event's time must lie within minutes ahead and days behind the server's clock, a rule JSON Schema cannot
        # state: a schema-valid batch timed in 2000 is rightly a 422 (and every other status is a refusal too).
        "operations": [
            {
                "include-path": "/v1/events",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["200", "422", "429", "503", "507"]}},
            }
        ],
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def attached_index(demo_index: Path, tmp_path_factory, embedder):
    root = copy_index(demo_index, tmp_path_factory.mktemp("fuzz") / "index")
    live = LiveIndex(SETTINGS.overridden(index_dir=root), embedder=embedder)
    live.load()
    assert live.ready
    APP.state.live = live
    APP.state.metrics.live = live
    yield live
    del APP.state.live


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples every run: no flaky CI
)
def test_api_conforms_to_its_schema(case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
