"""The ``recommender`` command: parses, calls the library, prints. Errors are one line and an exit code.

One module per command (:mod:`.build`, :mod:`.related`, :mod:`.evaluate`, :mod:`.index`, :mod:`.events`), shared pieces in
:mod:`.common`, the root command in :mod:`.app`.
"""

from .app import app, main

__all__ = ["app", "main"]
