"""Structured logging for every process: JSON lines in production, readable lines in development.

Standard-library loggers (dramatiq, aiohttp, alembic) go through the same renderer, and
context bound with ``structlog.contextvars`` (``order_id``, ``message_id``) lands on every line.
"""

from __future__ import annotations

import logging
import sys

import structlog

from config.settings import Settings


def configure_logging(settings: Settings, process: str) -> None:
    """Route all logging through structlog, tagging every line with ``process``."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_process(process),
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Access logs and pika's connection chatter would drown the order trail.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("pika").setLevel(logging.WARNING)


def _add_process(process: str):
    def processor(logger, method_name, event_dict):
        event_dict.setdefault("process", process)
        return event_dict

    return processor
