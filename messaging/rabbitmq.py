"""The RabbitMQ broker every process of the fleet declares its queues through.

For each step queue ``q`` dramatiq declares three durable queues: ``q`` and its delay queue
``q.DQ``, which both dead-letter into ``q.XQ``, and ``q.XQ`` itself, where messages whose retries
ran out wait for an operator (``orders-admin dead-letters``) until ``x-message-ttl`` drops them.
RabbitMQ refuses to redeclare a queue with other arguments (PRECONDITION_FAILED), so workers,
gateway, scheduler and operator tool must all declare them alike: the arguments are built here,
by :class:`FleetBroker`, and nowhere else.

Importing this module also makes every dramatiq message of the process JSON written and read by
orjson (:mod:`messaging.encoding`): all processes that publish or consume import it.
"""

from __future__ import annotations

import logging
from typing import Any

import pika.exceptions
import structlog
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import xq_name

from config import Settings
from messaging import encoding

log = structlog.get_logger(__name__)

encoding.install()

#: AMQP reply code of a redeclaration whose arguments differ from the existing queue's.
PRECONDITION_FAILED = 406


class FleetBroker(RabbitmqBroker):
    """dramatiq's RabbitMQ broker, declaring dead-letter queues with the fleet's TTL.

    Arguments of ``q`` and ``q.DQ`` come from dramatiq's ``_build_queue_arguments`` (dead-letter
    routing, priority); those of ``q.XQ`` from :meth:`dead_letter_queue_arguments`. Anything that
    changes queue arguments belongs in these two methods.
    """

    def __init__(self, *, dead_letter_ttl_seconds: int, **options: Any) -> None:
        super().__init__(**options)
        self.dead_letter_ttl_seconds = dead_letter_ttl_seconds

    def dead_letter_queue_arguments(self) -> dict[str, Any]:
        """Arguments of every ``.XQ`` queue."""
        # One TTL for the whole queue, not per message: RabbitMQ only expires messages at the
        # head of a queue, so per-message TTLs would keep short-lived letters behind long ones.
        return {"x-message-ttl": self.dead_letter_ttl_seconds * 1000}

    def _declare_xq_queue(self, queue_name: str):
        name = xq_name(queue_name)
        try:
            return self.channel.queue_declare(
                queue=name, durable=True, arguments=self.dead_letter_queue_arguments()
            )
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code != PRECONDITION_FAILED:
                raise
            # The queue exists with another TTL (DEAD_LETTER_TTL_SECONDS changed): dramatiq would
            # retry and give up, and then this process could neither consume nor publish. The
            # existing queue keeps its TTL and its letters; the operator changes it on purpose.
            del self.channel  # closed by the broker; the next use opens a fresh one
            log.warning(
                "broker.dead_letter_queue_kept",
                queue=name,
                dead_letter_ttl_seconds=self.dead_letter_ttl_seconds,
                reason=error.reply_text,
                hint="the queue keeps the TTL it was declared with: shorten it with a RabbitMQ "
                "policy (message-ttl), or delete the empty queue while the fleet is stopped",
            )
            return self.channel.queue_declare(queue=name, passive=True)

    def close(self) -> None:
        """Close every channel and connection of the process, iterating over a copy of the two sets.

        dramatiq's own ``close`` iterates the live sets, which another thread changes when it drops
        its channel or connection while the main thread closes them at shutdown (RuntimeError: Set
        changed size during iteration, and the worker process exits 1). Otherwise the same.
        """
        self._ignore_pika_logs()
        for channel_or_connection in [*self.channels, *self.connections]:
            try:
                channel_or_connection.close()
            except pika.exceptions.AMQPError:
                pass
            except Exception:  # already closed under us, or by its own thread meanwhile
                log.debug("broker.close_failed", target=repr(channel_or_connection), exc_info=True)


def fleet_broker(settings: Settings, **options: Any) -> FleetBroker:
    """A confirming :class:`FleetBroker` on ``BROKER_URL``; ``options`` go to dramatiq (``middleware``)."""
    return FleetBroker(
        url=settings.broker_url,
        confirm_delivery=True,
        dead_letter_ttl_seconds=settings.dead_letter_ttl_seconds,
        **options,
    )


class _MissingQueueProbe(logging.Filter):
    """Drops pika's warning about the 404 a passive declare of a not-yet-declared queue causes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Channel.Close (404)" not in record.getMessage()


def quiet_missing_queue_probes() -> None:
    """Keep pika from warning about each passive declare of a queue that does not exist yet."""
    logger = logging.getLogger("pika.channel")
    if not any(isinstance(f, _MissingQueueProbe) for f in logger.filters):
        logger.addFilter(_MissingQueueProbe())
