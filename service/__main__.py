"""``python -m service``: serve with settings from RECOMMENDER_* environment variables."""

from __future__ import annotations

import logging
import os

from recommender.settings import Settings

from .app import run

if __name__ == "__main__":
    logging.basicConfig(
        level=os.environ.get("RECOMMENDER_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run(Settings(), access_log=os.environ.get("RECOMMENDER_ACCESS_LOG", "1") != "0")
