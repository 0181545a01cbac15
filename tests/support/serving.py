"""Serving an aiohttp app in-process on 127.0.0.1, on a port reserved before it listens."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

from aiohttp import web


def bound_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1 but not yet listening: the port is ours, and
    connecting to it is refused until a site starts serving on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serving(app: web.Application, sock: socket.socket) -> AsyncIterator[None]:
    """Serve ``app`` on ``sock`` for the duration of the block."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield
    finally:
        await runner.cleanup()
