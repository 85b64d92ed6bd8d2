"""Synthetic readers with a known preference, for tests and the demo: they read articles, look at the related box
and click, and the API (or a LiveIndex in process) records what they did.

The reader model (:class:`ReaderModel`), per page view of a related box of ``k`` items:

- position bias: the item at position ``r`` is examined with probability ``1 / r ** bias`` (0.7 by default: a
  typical fit of click logs, where the top item gets 2 to 3 times the attention of the fifth);
- preference: an examined item of the same story as the page (the corpus' ``story_id`` label) is clicked with
  probability ``p_same``, any other with ``q_other``, both times the visitor's own propensity (a Gamma draw with
  mean 1 and standard deviation ``heterogeneity``: some readers click much more than others, which is what makes
  a visitor's impressions correlated); readers scan top-down and follow the first click;
- browsing: after a click the reader reads the clicked article and sees its box; without one, the next page view (if
  any) starts from a random article. The number of page views is geometric with mean ``views``;
- time: visitors arrive evenly over the ``span`` seconds before the simulation starts (2 days by default, so daily
  figures have several days), and stay 20 to 120 s on a page (one visitor's views make one session).

Planted effects, to check that the evaluation finds what is there and nothing else: ``click_scale`` multiplies both
click probabilities of a variant's readers (a CTR difference of known size); ``drop`` makes that share of a
variant's visitors send no events at all (a sample ratio mismatch, as a widget broken in one variant would).

Readers send what the widget sends: on each view one batch with the impressions and, if any, the click (the
in-process transport buffers batches so that tests do not pay one fsync per view).
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from .schema import format_ms

__all__ = [
    "HttpTransport",
    "LocalTransport",
    "ReaderModel",
    "SimulationError",
    "SimulationSummary",
    "load_stories",
    "simulate",
]


class SimulationError(RuntimeError):
    """The service answered something other than what a reader's browser expects."""


@dataclass(frozen=True)
class ReaderModel:
    p_same: float = 0.35
    q_other: float = 0.03
    bias: float = 0.7
    views: float = 3.0
    heterogeneity: float = 0.5
    click_scale: Mapping[str, float] = field(default_factory=dict)
    drop: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in (("p_same", self.p_same), ("q_other", self.q_other)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be from 0 to 1, got {value!r}")
        if self.views < 1:
            raise ValueError(f"views must be at least 1, got {self.views!r}")
        if self.heterogeneity < 0:
            raise ValueError(f"heterogeneity must not be negative, got {self.heterogeneity!r}")
        for variant, share in self.drop.items():
            if not 0 <= share <= 1:
                raise ValueError(f"drop share of {variant!r} must be from 0 to 1, got {share!r}")
        for variant, scale in self.click_scale.items():
            if scale < 0:
                raise ValueError(f"click scale of {variant!r} must not be negative, got {scale!r}")

    def examined(self, position: int) -> float:
        return 1.0 / position**self.bias

    def propensity(self, rng: random.Random) -> float:
        h = self.heterogeneity
        return rng.gammavariate(1 / (h * h), h * h) if h > 0 else 1.0

    def attraction(self, same_story: bool, variant: str, propensity: float = 1.0) -> float:
        base = self.p_same if same_story else self.q_other
        return min(1.0, base * propensity * self.click_scale.get(variant, 1.0))


class Transport(Protocol):
    def related(self, source_id: str, visitor: str, k: int) -> dict[str, Any]: ...

    def send(self, events: list[dict[str, Any]]) -> None: ...

    def flush(self) -> None: ...


class HttpTransport:
    """Through a running service: ``GET /v1/articles/{id}/related?visitor=`` and ``POST /v1/events`` (as
    ``text/plain``, what ``navigator.sendBeacon`` sends). A 429 waits ``Retry-After`` and sends again; a 503 (the
    index still loading) is retried for up to ``timeout`` seconds."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._base = parts.path.rstrip("/")
        self._factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._host, self._port, self._timeout = parts.hostname, parts.port, timeout
        self._conn: http.client.HTTPConnection | None = None
        self.requests = 0

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(3):
            if self._conn is None:
                self._conn = self._factory(self._host, self._port, timeout=self._timeout)
            try:
                self._conn.request(method, self._base + path, body=body, headers=dict(headers or {}))
                response = self._conn.getresponse()
                data = response.read()
                self.requests += 1
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def related(self, source_id: str, visitor: str, k: int) -> dict[str, Any]:
        query = urllib.parse.urlencode({"k": k, "visitor": visitor})
        path = f"/v1/articles/{urllib.parse.quote(source_id, safe='')}/related?{query}"
        deadline = time.monotonic() + self._timeout
        status, _, data = self._request("GET", path)
        while status == 503 and time.monotonic() < deadline:  # a service that is still loading its index
            time.sleep(0.5)
            status, _, data = self._request("GET", path)
        if status != 200:
            raise SimulationError(f"related {source_id!r}: HTTP {status}: {data[:300]!r}")
        return json.loads(data)

    def send(self, events: list[dict[str, Any]]) -> None:
        body = orjson.dumps({"events": events})
        while True:
            status, headers, data = self._request(
                "POST", "/v1/events", body, {"Content-Type": "text/plain;charset=UTF-8"}
            )
            if status == 429:
                time.sleep(float(headers.get("retry-after", "1")))
                continue
            if status != 200:
                raise SimulationError(f"events: HTTP {status}: {data[:300]!r}")
            return

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class LocalTransport:
    """In process: a LiveIndex answers, an EventLog stores (events validated as the API validates them). Batches
    are buffered up to ``buffer`` events and appended together (one fsync)."""

    def __init__(self, live: Any, log: Any, *, limits: Any = None, buffer: int = 500) -> None:
        from ..options import RelatedOptions
        from .schema import Limits

        self.live = live
        self.log = log
        self.limits = limits or Limits(max_events=max(buffer, 100))
        self.buffer = buffer
        self._pending: list[dict[str, Any]] = []
        self._options = RelatedOptions

    def related(self, source_id: str, visitor: str, k: int) -> dict[str, Any]:
        return self.live.related(source_id, self._options(k=k), self.live.experiment.assign(visitor)).payload

    def send(self, events: list[dict[str, Any]]) -> None:
        self._pending.extend(events)
        if len(self._pending) >= self.buffer:
            self.flush()

    def flush(self) -> None:
        from .schema import parse_batch

        while self._pending:
            batch, self._pending = self._pending[: self.buffer], self._pending[self.buffer :]
            self.log.append(parse_batch({"events": batch}, self.limits))


@dataclass
class SimulationSummary:
    visitors: int = 0
    views: int = 0
    impressions: int = 0
    clicks: int = 0
    dropped_visitors: int = 0
    visitors_by_variant: Counter = field(default_factory=Counter)
    clicks_by_variant: Counter = field(default_factory=Counter)
    impressions_by_variant: Counter = field(default_factory=Counter)

    def line(self) -> str:
        per = ", ".join(
            f"{v}: {n} visitors, {self.impressions_by_variant[v]} impressions, {self.clicks_by_variant[v]} clicks"
            for v, n in sorted(self.visitors_by_variant.items())
        )
        return (
            f"simulated {self.visitors} visitors, {self.views} page views, {self.impressions} impressions, "
            f"{self.clicks} clicks ({self.dropped_visitors} visitors sent nothing); {per}"
        )


def load_stories(path: Path, label_field: str = "story_id") -> tuple[list[str], dict[str, str]]:
    """Article ids and their story labels from a JSONL export (an article without a label is its own story)."""
    ids: list[str] = []
    stories: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            record = json.loads(line)
            article_id = str(record["id"])
            ids.append(article_id)
            label = record.get(label_field)
            stories[article_id] = str(label) if label is not None else f"\x00{article_id}"
    return ids, stories


def simulate(
    transport: Transport,
    articles: Sequence[str],
    stories: Mapping[str, str],
    *,
    visitors: int,
    seed: int = 0,
    model: ReaderModel | None = None,
    k: int = 6,
    clock: Callable[[], float] = time.time,
    span: float = 2 * 86400.0,
    visitor_prefix: str = "sim",
) -> SimulationSummary:
    """Run ``visitors`` synthetic readers (seeded: the same seed and rankings give the same clicks and times
    relative to the start)."""
    model = model or ReaderModel()
    rng = random.Random(seed)
    summary = SimulationSummary()
    stay = 1.0 - 1.0 / model.views
    start_ms = int(clock() * 1000)
    for number in range(visitors):
        visitor = f"{visitor_prefix}-{seed}-{number}"
        moment = start_ms - int(span * 1000 * (1 - number / max(visitors, 1)))
        last_ms = -1
        propensity = model.propensity(rng)
        source = rng.choice(articles)
        silent: bool | None = None
        summary.visitors += 1
        while True:
            payload = transport.related(source, visitor, k)
            variant = payload["variant"]
            if silent is None:
                silent = rng.random() < model.drop.get(variant, 0.0)
                summary.dropped_visitors += silent
                if not silent:
                    summary.visitors_by_variant[variant] += 1
            summary.views += 1
            items = [item["id"] for item in payload["items"]]
            clicked = None
            for position, item in enumerate(items, start=1):
                if rng.random() < model.examined(position):
                    same = stories.get(item, item) == stories.get(source, source)
                    if rng.random() < model.attraction(same, variant, propensity):
                        clicked = (position, item)
                        break
            # Never ahead of the start (the API refuses the future); a visitor's views 1 ms apart at least (two
            # identical views at one instant would be one event twice).
            last_ms = max(min(moment, start_ms), last_ms + 1)
            moment += int(rng.uniform(20, 120) * 1000)
            if not silent:
                at = format_ms(last_ms)
                base = {
                    "source_id": source,
                    "request_id": payload["request_id"],
                    "variant": variant,
                    "visitor": visitor,
                    "at": at,
                }
                events = [
                    {"type": "impression", "item_id": item, "position": p, **base}
                    for p, item in enumerate(items, start=1)
                ]
                if clicked is not None:
                    events.append({"type": "click", "item_id": clicked[1], "position": clicked[0], **base})
                transport.send(events)
                summary.impressions += len(items)
                summary.impressions_by_variant[variant] += len(items)
                summary.clicks += clicked is not None
                summary.clicks_by_variant[variant] += clicked is not None
            if rng.random() >= stay:
                break
            source = clicked[1] if clicked is not None else rng.choice(articles)
    transport.flush()
    return summary
