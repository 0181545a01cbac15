"""The RabbitMQ broker every process of the fleet declares its queues through.

For each step queue ``q`` dramatiq declares three durable queues: ``q`` and its delay queue
``q.DQ``, which both dead-letter into ``q.XQ``, and ``q.XQ`` itself, where messages whose retries
ran out wait for an operator (``orders-admin dead-letters``) until ``x-message-ttl`` drops them.
RabbitMQ refuses to redeclare a queue with other arguments (PRECONDITION_FAILED), so workers,
gateway, scheduler and operator tool must all declare them alike: the arguments are built here,
by :class:`FleetBroker`, and nowhere else.

``QUEUE_TYPE`` chooses the type of all of them. ``classic`` declares them as they always were
(no ``x-queue-type``, so queues of an existing deployment still match); ``quorum`` adds
``x-queue-type: quorum``: replicated by Raft over the cluster's nodes, a publisher confirm then
means a majority of them wrote the message. Quorum queues refuse ``x-max-priority`` (RabbitMQ
3.10), which dramatiq adds when a broker has ``max_priority``: the fleet never sets it (a
follow-up's priority is the worker's own ordering of what it prefetched, see
``workers/work_queue.py``), and under quorum it is dropped. A queue cannot change type in place:
``orders-admin queues migrate`` moves a vhost's messages into queues of the other type.

Importing this module also makes every dramatiq message of the process JSON written and read by
orjson (:mod:`messaging.encoding`): all processes that publish or consume import it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika.exceptions
import structlog
from dramatiq.common import dq_name, q_name, xq_name

from config import Settings
from messaging import encoding
from messaging.node_preference import NodePreferringBroker

log = structlog.get_logger(__name__)

encoding.install()

#: AMQP reply code of a redeclaration whose arguments differ from the existing queue's.
PRECONDITION_FAILED = 406

#: The values of QUEUE_TYPE.
CLASSIC = "classic"
QUORUM = "quorum"
QUEUE_TYPES = (CLASSIC, QUORUM)


def queue_type_arguments(queue_type: str) -> dict[str, Any]:
    """The arguments that make a durable queue of ``queue_type``.

    None for classic: queues declared before QUEUE_TYPE existed have none, and declaring exactly
    as before keeps them, and every other client's declarations, equivalent. Services consuming
    the domain events declare their own queues with these as well.
    """
    if queue_type not in QUEUE_TYPES:
        raise ValueError(f"queue type must be one of {', '.join(QUEUE_TYPES)}, got {queue_type!r}")
    return {"x-queue-type": QUORUM} if queue_type == QUORUM else {}


def is_queue_type_mismatch(error: BaseException) -> bool:
    """True for RabbitMQ refusing a declaration because the queue exists with the other type."""
    return (
        isinstance(error, pika.exceptions.ChannelClosedByBroker)
        and error.reply_code == PRECONDITION_FAILED
        and "x-queue-type" in (error.reply_text or "")
    )


class FleetBroker(NodePreferringBroker):
    """dramatiq's RabbitMQ broker, declaring queues of the fleet's type and dead-letter queues
    with the fleet's TTL.

    Arguments of ``q`` and ``q.DQ`` come from :meth:`_build_queue_arguments` (dramatiq's
    dead-letter routing and priority, then the queue type); those of ``q.XQ`` from
    :meth:`dead_letter_queue_arguments`. Anything that changes queue arguments belongs in these
    two methods; :meth:`queue_arguments` answers for any of the three names. Of several nodes in
    ``BROKER_URL`` it tries the one that answered last first (:mod:`messaging.node_preference`).
    """

    def __init__(self, *, dead_letter_ttl_seconds: int, queue_type: str = CLASSIC, **options: Any) -> None:
        super().__init__(**options)
        self.dead_letter_ttl_seconds = dead_letter_ttl_seconds
        self.type_arguments = queue_type_arguments(queue_type)
        self.queue_type = queue_type
        if queue_type == QUORUM and self.max_priority:
            log.warning(
                "broker.priorities_dropped",
                max_priority=self.max_priority,
                reason="quorum queues take no x-max-priority: messages are delivered in order",
            )

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments = super()._build_queue_arguments(queue_name)
        if self.queue_type == QUORUM:
            arguments.pop("x-max-priority", None)  # refused by quorum queues ("invalid arg")
        return {**arguments, **self.type_arguments}

    def dead_letter_queue_arguments(self) -> dict[str, Any]:
        """Arguments of every ``.XQ`` queue."""
        # One TTL for the whole queue, not per message: RabbitMQ only expires messages at the
        # head of a queue, so per-message TTLs would keep short-lived letters behind long ones.
        # Quorum queues take a message TTL too (RabbitMQ 3.10 and later).
        return {"x-message-ttl": self.dead_letter_ttl_seconds * 1000, **self.type_arguments}

    def queue_arguments(self, name: str) -> dict[str, Any]:
        """The arguments this broker declares ``name`` with: a step queue, its ``.DQ`` or its ``.XQ``."""
        if name.endswith(".XQ"):
            return self.dead_letter_queue_arguments()
        return self._build_queue_arguments(q_name(name))

    def _declare_queue(self, queue_name: str):
        with self._explaining_type_mismatch(queue_name):
            return super()._declare_queue(queue_name)

    def _declare_dq_queue(self, queue_name: str):
        with self._explaining_type_mismatch(dq_name(queue_name)):
            return super()._declare_dq_queue(queue_name)

    @contextmanager
    def _explaining_type_mismatch(self, name: str) -> Iterator[None]:
        try:
            yield
        except pika.exceptions.ChannelClosedByBroker as error:
            if is_queue_type_mismatch(error):
                # The queue is of the other type: QUEUE_TYPE changed but the queues were not
                # moved. This process can neither consume nor publish on it (the outbox keeps
                # its messages) until they are.
                log.error(
                    "broker.queue_type_mismatch",
                    queue=name,
                    queue_type=self.queue_type,
                    reason=error.reply_text,
                    hint="the queue exists with the other type: move the vhost's queues with "
                    f"`orders-admin queues migrate --to {self.queue_type}` (docs/operations.md)",
                )
            raise

    def _declare_xq_queue(self, queue_name: str):
        name = xq_name(queue_name)
        try:
            with self._explaining_type_mismatch(name):
                return self.channel.queue_declare(
                    queue=name, durable=True, arguments=self.dead_letter_queue_arguments()
                )
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code != PRECONDITION_FAILED or is_queue_type_mismatch(error):
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
    """A confirming :class:`FleetBroker` on ``BROKER_URL`` (every node it lists) with the fleet's
    ``QUEUE_TYPE``; ``options`` go to dramatiq (``middleware``)."""
    return FleetBroker(
        url=settings.broker_url,
        confirm_delivery=True,
        dead_letter_ttl_seconds=settings.dead_letter_ttl_seconds,
        queue_type=settings.queue_type,
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
