"""``python -m recommender`` is the ``recommender`` command."""

from .cli import main

main()
