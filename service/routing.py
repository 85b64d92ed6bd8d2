"""Walking the app's routes (FastAPI wraps included routers): for the methods a path allows (405's ``Allow``) and
for labelling a request answered before routing (metrics of a 413)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

__all__ = ["allowed_methods", "iter_routes", "match_route"]


def iter_routes(app: Any) -> Iterator[BaseRoute]:
    """Every route of ``app`` in matching order, included routers flattened."""
    pending = list(getattr(getattr(app, "router", None), "routes", ()))
    while pending:
        route = pending.pop(0)
        included = getattr(route, "original_router", None)
        if included is not None:
            pending[:0] = list(included.routes)
            continue
        yield route


def allowed_methods(scope: Scope) -> str:
    """Every method some route serves at this path (Starlette names only the first route's methods)."""
    probe = {**scope, "method": "__none__"}
    methods: set[str] = set()
    for route in iter_routes(scope.get("app")):
        here = getattr(route, "methods", None)
        if here and route.matches(probe)[0] != Match.NONE:
            methods |= set(here)
    return ", ".join(sorted(methods))


def match_route(scope: Scope) -> None:
    """Set ``scope["route"]`` as routing would (a full match, else a method mismatch), for a request answered
    before routing. Unmatched paths keep no route, so metrics label them "unmatched"."""
    partial = None
    for route in iter_routes(scope.get("app")):
        match, child = route.matches(scope)
        if match == Match.FULL:
            if child.get("route") is not None:  # API routes; mounts (static files) set none when routed either
                scope["route"] = child["route"]
            return
        if match == Match.PARTIAL and partial is None:
            partial = child.get("route")
    if partial is not None:
        scope["route"] = partial
