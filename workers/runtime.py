"""What a worker process's steps need, created once per process on its event loop.

Nothing here runs at import time: the dramatiq middleware in :mod:`workers.broker` builds the
runtime lazily on the worker's event loop thread and closes it when the worker stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from config import Settings
from messaging.live_status import StatusNotifier, create_redis
from messaging.outbox import OutboxPublisher
from messaging.queues import NOTIFY
from models.db import create_engine, create_sessionmaker
from models.events import EventEmitter
from models.unit_of_work import UnitOfWork
from providers.mailer import Mailers
from providers.payments.choice import payment_provider
from providers.payments.provider import PaymentProvider
from workers.status_metrics import count_status_change


@dataclass
class Runtime:
    """Dependencies injected into steps: settings, database, outbox publisher, payment provider."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    publisher: OutboxPublisher
    psp: PaymentProvider
    notifier: StatusNotifier

    emitter: EventEmitter
    #: SMTP connections kept open between emails, per server (shared by copies of the runtime).
    mailers: Mailers = field(default_factory=Mailers)

    def uow(self) -> UnitOfWork:
        """A new unit of work (one transaction) whose messages go out after commit."""
        return UnitOfWork(self.sessionmaker, self.publisher, self.notifier, self.emitter)

    async def close(self) -> None:
        """Release connections: SMTP, provider pool, Redis, database pool, broker channel."""
        await self.mailers.aclose()
        await self.psp.close()
        await self.notifier.close()
        await self.publisher.aclose()
        await self.engine.dispose()


def build_runtime(
    settings: Settings, broker: RabbitmqBroker, *, pool_size: int = 10, owns_broker: bool = True
) -> Runtime:
    """Assemble a runtime publishing through ``broker`` (which must confirm deliveries);
    closing the runtime closes the broker too, unless ``owns_broker`` is false (a worker's)."""
    engine = create_engine(settings.database_url, pool_size=pool_size)
    sessionmaker = create_sessionmaker(engine)
    return Runtime(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        publisher=OutboxPublisher(broker, sessionmaker, owns_broker=owns_broker),
        psp=payment_provider(settings),
        notifier=StatusNotifier(create_redis(settings.redis_url), on_change=count_status_change),
        emitter=EventEmitter(settings.events_exchange, NOTIFY),
    )
