"""The ``web`` process: serve the gateway on ``$PORT`` until SIGTERM or SIGINT.

On the first signal the listening socket closes (new connections are refused, so a load
balancer moves on), idle keep-alive connections are closed, event streams are told to end,
and requests in flight get up to :data:`SHUTDOWN_TIMEOUT_SECONDS` to finish before the
resources close. Further signals change nothing: a platform that signals every process of a
container, and a supervisor that forwards, must not cut that short.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog
import uvloop
from aiohttp import web

from config.logging import configure_logging
from config.settings import Settings, settings_or_exit
from gateway.app import create_app

log = structlog.get_logger(__name__)

#: How long requests in flight may take to finish after the signal. A PaaS sends SIGKILL about
#: 30 s after SIGTERM; requests are short, and event streams end within a second on their own.
SHUTDOWN_TIMEOUT_SECONDS = 8.0


async def serve(settings: Settings, stop: asyncio.Event, host: str = "0.0.0.0") -> None:
    """Serve the gateway for ``settings`` until ``stop`` is set, then shut down gracefully."""
    # request_log_middleware writes one structured line per request instead of the access log.
    runner = web.AppRunner(
        create_app(settings),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        # A request line past aiohttp's 8 KiB default would be refused in plain text before any
        # middleware; up to 64 KiB it reaches the app and gets a problem document.
        max_line_size=65536,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, settings.port).start()
        log.info("web.started", port=settings.port)
        await stop.wait()
        log.info("web.stopping")
    finally:
        await runner.cleanup()
        log.info("web.stopped")


def main() -> int:
    """Console entry point: load settings, set up logging and run the server until stopped."""
    settings = settings_or_exit()
    configure_logging(settings, "web")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(settings, stop)

    uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
