"""Publishing outbox rows to RabbitMQ with publisher confirms, and the relay for leftovers.

pika is blocking, so every publish runs on one dedicated thread per process: the event loop of
the gateway or of a worker never waits on the broker. A row is marked sent only after RabbitMQ
confirmed it; rows that stay unsent (broker down, crash after commit) are republished by
:func:`relay_unsent`, so a message may arrive twice but is never lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, cast

import dramatiq
import pika
import structlog
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.clock import utcnow
from models.tables import OutboxMessage

log = structlog.get_logger(__name__)

#: How long confirmed ids gather before one UPDATE marks them all sent.
MARK_EVERY_SECONDS = 0.05

_outbox = cast(Table, OutboxMessage.__table__)
_MARK_SENT = (
    update(_outbox)
    .where(_outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(sent_at=bindparam("now"), attempts=_outbox.c.attempts + 1)
)


def declare_events_exchange(channel: Any, exchange: str) -> None:
    """Declare the durable topic exchange domain events go to (idempotent)."""
    channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)


def _remaining_delay_ms(message: OutboxMessage) -> int | None:
    """The delay still owed: a row republished late must not wait its full delay again."""
    if not message.delay_ms:
        return None
    created = message.created_at or utcnow()
    due = created + timedelta(milliseconds=message.delay_ms)
    remaining = int((due - utcnow()).total_seconds() * 1000)
    return max(remaining, 0)


def to_dramatiq(message: OutboxMessage) -> dramatiq.Message:
    """The broker message for an outbox row; its id is the row's id, so logs join up."""
    created = message.created_at or utcnow()
    assert message.queue_name is not None and message.actor_name is not None, "an event is no step message"
    return dramatiq.Message(
        queue_name=message.queue_name,
        actor_name=message.actor_name,
        args=(),
        kwargs=dict(message.kwargs),
        options={},
        message_id=message.id,
        message_timestamp=int(created.timestamp() * 1000),
    )


class OutboxPublisher:
    """Sends outbox rows through a dramatiq broker configured with ``confirm_delivery=True``.

    Rows are sent in the background after their commit, and confirmed rows are marked sent in
    batches: the ids confirmed within :data:`MARK_EVERY_SECONDS` (by all the steps of the process)
    go together in one ``UPDATE``, so under load marking costs a fraction of a statement per unit of
    work instead of one each, and no step waits for it.
    A row confirmed but not yet marked when the process dies is sent again by the relay
    (:data:`config.Settings.outbox_relay_after_seconds` later, far above the batching window):
    a duplicate message, never a lost one. :meth:`flush` (and :meth:`aclose`) mark what is left.
    """

    def __init__(
        self,
        broker: RabbitmqBroker,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        owns_broker: bool = True,
    ):
        """``owns_broker``: :meth:`close` closes the whole broker. A worker process's broker is
        dramatiq's, which closes it itself once its threads have stopped; there the publisher
        closes only its own thread's connection."""
        self._broker = broker
        self._owns_broker = owns_broker
        self._sessionmaker = sessionmaker
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-publisher")
        self._declared_exchanges: set[str] = set()
        # Rows being sent in the background; ids waiting for the next "mark sent" UPDATE, and the
        # task that will run it.
        self._sending: set[asyncio.Task] = set()
        self._unmarked: list[str] = []
        self._marker: asyncio.Task | None = None

    def _publish_event(self, message: OutboxMessage) -> None:
        assert message.exchange is not None and message.routing_key is not None, "a step message is no event"
        try:
            channel = self._broker.channel  # this thread's channel, with publisher confirms
            if message.exchange not in self._declared_exchanges:
                declare_events_exchange(channel, message.exchange)
                self._declared_exchanges.add(message.exchange)
            channel.basic_publish(
                exchange=message.exchange,
                routing_key=message.routing_key,
                body=json.dumps(message.kwargs, separators=(",", ":")).encode(),
                properties=pika.BasicProperties(
                    delivery_mode=2,
                    content_type="application/json",
                    message_id=message.kwargs.get("event_id"),
                    type=message.routing_key,
                ),
            )
        except Exception:
            # A broken channel is dropped so the next attempt opens a fresh one.
            self._declared_exchanges.clear()
            del self._broker.connection
            raise

    def _send_blocking(self, messages: Sequence[OutboxMessage]) -> tuple[list[str], BaseException | None]:
        sent: list[str] = []
        for message in messages:
            try:
                if message.exchange:
                    self._publish_event(message)
                else:
                    self._broker.enqueue(to_dramatiq(message), delay=_remaining_delay_ms(message))
            except Exception as error:  # broker down or unroutable: the relay retries later
                return sent, error
            sent.append(message.id)
        return sent, None

    async def send(self, messages: Sequence[OutboxMessage]) -> list[str]:
        """Publish ``messages`` in order; returns the ids RabbitMQ confirmed before any failure."""
        loop = asyncio.get_running_loop()
        sent, error = await loop.run_in_executor(self._executor, self._send_blocking, list(messages))
        for message in messages:
            if message.id in sent:
                log.info(
                    "outbox.published",
                    outbox_id=message.id,
                    actor=message.actor_name,
                    event_type=message.routing_key,
                    order_id=message.order_id,
                    delay_ms=message.delay_ms,
                )
        if error is not None:
            log.warning("outbox.publish_failed", error=repr(error), unsent=len(messages) - len(sent))
        return sent

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        """Hand committed rows over for sending, and return at once.

        They go out in the background, in the order handed over (one publishing thread), and
        those confirmed are marked sent in the next batch: a request or a step does not wait for
        the broker. A failure leaves the rows to the relay.
        """
        task = asyncio.get_running_loop().create_task(self._send_and_mark(list(messages)))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_and_mark(self, messages: list[OutboxMessage]) -> None:
        try:
            sent = await self.send(messages)
        except Exception:
            log.warning(
                "outbox.publish_deferred",
                count=len(messages),
                order_ids=sorted({m.order_id for m in messages if m.order_id}),
                exc_info=True,
            )
            return
        if sent:
            self._mark_soon(sent)

    def _mark_soon(self, ids: list[str]) -> None:
        loop = asyncio.get_running_loop()
        if self._marker is not None and self._marker.get_loop() is not loop:
            # A new event loop (tests run one per test): the old loop's batch is gone with it.
            self._unmarked, self._marker = [], None
        self._unmarked.extend(ids)
        if self._marker is None or self._marker.done():
            self._marker = loop.create_task(self._mark_batches())

    async def _mark_batches(self) -> None:
        while self._unmarked:
            # Let the other steps of the process add their confirmed ids to this batch.
            await asyncio.sleep(MARK_EVERY_SECONDS)
            ids, self._unmarked = self._unmarked, []
            try:
                async with self._sessionmaker() as session, session.begin():
                    await session.execute(_MARK_SENT, {"ids": ids, "now": utcnow()})
            except Exception as error:  # the rows stay unsent: the relay publishes them again
                log.warning("outbox.mark_failed", count=len(ids), error=repr(error))

    async def flush(self) -> None:
        """Wait until every row handed over so far is sent and marked sent (or the attempt failed)."""
        loop = asyncio.get_running_loop()
        sending = [task for task in self._sending if task.get_loop() is loop]
        if sending:
            await asyncio.gather(*sending, return_exceptions=True)
        marker = self._marker
        if marker is not None and marker.get_loop() is asyncio.get_running_loop() and not marker.done():
            await asyncio.shield(marker)

    async def aclose(self) -> None:
        """Mark what was confirmed, then stop the publishing thread and close the broker."""
        await self.flush()
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Close the publishing thread's connection (in that thread: pika's are not thread-safe),
        stop the thread, and close the broker if it is the publisher's own."""
        self._executor.submit(self._drop_connection).result()
        self._executor.shutdown(wait=True)
        if self._owns_broker:
            self._broker.close()

    def _drop_connection(self) -> None:
        try:
            del self._broker.connection  # this thread's channel and connection, closed and forgotten
        except Exception:  # already broken: nothing left to close
            log.debug("outbox.connection_close_failed", exc_info=True)


async def relay_unsent(
    sessionmaker: async_sessionmaker[AsyncSession],
    publisher: OutboxPublisher,
    older_than_seconds: float,
    batch_size: int = 500,
) -> int:
    """Republish rows left unsent for longer than ``older_than_seconds``; returns how many went out.

    ``SKIP LOCKED`` lets several relays run at once without sending the same row twice at the
    same moment.
    """
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    async with sessionmaker() as session, session.begin():
        rows = (
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.sent_at.is_(None), OutboxMessage.created_at <= cutoff)
                    .order_by(OutboxMessage.created_at)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return 0
        sent = await publisher.send(rows)
        now = utcnow()
        for row in rows:
            row.attempts += 1
            if row.id in sent:
                row.sent_at = now
        for row in rows:
            if row.id in sent:
                log.info("outbox.relayed", outbox_id=row.id, actor=row.actor_name, order_id=row.order_id)
    return len(sent)
