"""The ``web`` process: serve the gateway on ``$PORT``."""

from __future__ import annotations

import sys

from aiohttp import web

from config.logging import configure_logging
from config.settings import settings_or_exit
from gateway.app import create_app

# Requests are short; this bounds how long a deploy waits for the last ones to finish.
SHUTDOWN_TIMEOUT_SECONDS = 15.0


def main() -> int:
    """Console entry point: load settings, set up logging and run the server until stopped."""
    settings = settings_or_exit()
    configure_logging(settings, "web")
    web.run_app(
        create_app(settings),
        host="0.0.0.0",
        port=settings.port,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        # request_log_middleware writes one structured line per request instead.
        access_log=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
