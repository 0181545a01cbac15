"""What the sandbox console scripts share: loading settings and serving an app, or exiting cleanly."""

from __future__ import annotations

import sys
from typing import NoReturn

from aiohttp import web

from config import settings_or_exit  # noqa: F401  (re-exported for the sandbox entry points)


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
