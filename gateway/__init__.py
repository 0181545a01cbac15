"""The HTTP gateway: a thin aiohttp app that validates, writes what must be durable, and enqueues work.

Build it with :func:`gateway.app.create_app`; run it with ``python -m gateway``.
"""
