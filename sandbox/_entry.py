"""What the sandbox console scripts share: loading settings and serving an app, or exiting cleanly."""

from __future__ import annotations

import sys
from typing import NoReturn

from aiohttp import web

from config import Settings, settings_or_exit
from config.logging import configure_logging


def start(process: str) -> Settings:
    """Settings for a sandbox process (or exit 2 naming the bad variable), with logging set up."""
    settings = settings_or_exit()
    configure_logging(settings, process)
    return settings


def _fail(message: str, code: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def serve(app: web.Application, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` until SIGINT/SIGTERM.

    A port already in use (by this app or a server it starts) exits 1 with one line, not a trace.
    """
    try:
        web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)
    except OSError as exc:
        _fail(f"cannot serve: {exc}", 1)
