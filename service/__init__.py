"""The HTTP service: API v1, probes, metrics and the demo page over a live recommender index.

``create_app`` and ``run`` load FastAPI and the rest on first use, so that ``service.cli`` (the ``serve`` and
``demo`` commands) can be imported by ``recommender --help`` without them.
"""

from typing import Any

__all__ = ["create_app", "run"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "run":
        from .server import run

        return run
    raise AttributeError(f"module 'service' has no attribute {name!r}")
