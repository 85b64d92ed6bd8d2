"""The HTTP service: API v1, probes, metrics and the demo page over a live recommender index."""

from .app import create_app, run

__all__ = ["create_app", "run"]
