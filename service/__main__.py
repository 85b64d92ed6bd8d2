"""``python -m service``: serve with settings from RECOMMENDER_* environment variables.

RECOMMENDER_LOG_LEVEL (default info) and RECOMMENDER_ACCESS_LOG (default 1; 0 turns uvicorn's access log off)
only concern this entry point; everything else is :class:`recommender.settings.Settings`.
"""

from __future__ import annotations

import logging
import os
import sys

from pydantic import ValidationError

from recommender.settings import Settings, settings_error_message

from .server import exit_now, run

if __name__ == "__main__":
    level = os.environ.get("RECOMMENDER_LOG_LEVEL", "info").lower()
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:  # one line naming the variable, as the CLI prints it; never a traceback
        print(f"error: {settings_error_message(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    run(settings, log_level=level, access_log=os.environ.get("RECOMMENDER_ACCESS_LOG", "1") != "0")
    exit_now(0)
