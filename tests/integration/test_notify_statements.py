"""What one notify costs the database: SQL statements and round trips per email.

The step runs on an engine of its own (made as the worker's is), so that nothing else the
process does meanwhile (an outbox batch, say) is counted. Statements are counted with
SQLAlchemy's ``before_cursor_execute``; round trips (statements, pool pre-pings, COMMIT and
ROLLBACK) at the driver, where each one is a command sent to the server and its answer awaited.
(The step on an ORM session took 12 statements and 18 round trips for a first delivery.)
"""

from __future__ import annotations

import dataclasses

import aiomysql
import pytest
import pytest_asyncio
from sqlalchemy import event

from actors.notify import send_notification
from models.db import create_engine
from models.state import NotificationStatus
from providers.mailer import MailTemporaryError
from tests.support.report import report
from tests.support.scenarios import placed_order as placed


class DatabaseTraffic:
    def __init__(self):
        self.statements: list[str] = []
        self.round_trips = 0

    def reset(self) -> None:
        self.statements.clear()
        self.round_trips = 0


@pytest_asyncio.fixture
async def counted(mailing, monkeypatch):
    """(the mailing runtime on an engine of its own, what that engine sends the server)."""
    engine = create_engine(mailing.settings.database_url)
    seen = DatabaseTraffic()
    ours: set[int] = set()

    def on_connect(dbapi_connection, record):
        ours.add(id(dbapi_connection.driver_connection))

    def on_statement(conn, cursor, statement, parameters, context, executemany):
        seen.statements.append(statement)

    original = aiomysql.Connection._execute_command

    async def counting(self, command, sql):
        if id(self) in ours:
            seen.round_trips += 1
        return await original(self, command, sql)

    event.listen(engine.sync_engine.pool, "connect", on_connect)
    event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
    monkeypatch.setattr(aiomysql.Connection, "_execute_command", counting)
    async with engine.connect() as conn:  # the first connection's set-up is not the step's
        await conn.exec_driver_sql("SELECT 1")
    seen.reset()
    yield dataclasses.replace(mailing, engine=engine), seen
    await engine.dispose()


async def test_a_first_delivery_takes_at_most_three_statements_and_a_redelivery_one(
    mailing, counted, sessionmaker, smtp
):
    order_id = await placed(mailing, sessionmaker)
    step_runtime, seen = counted

    seen.reset()
    assert await send_notification(step_runtime, order_id, "order.placed") == NotificationStatus.SENT
    first, first_trips = list(seen.statements), seen.round_trips
    seen.reset()
    assert await send_notification(step_runtime, order_id, "order.placed") is None
    again, again_trips = list(seen.statements), seen.round_trips
    report(f"notify, first delivery: {len(first)} SQL statements, {first_trips} round trips")
    report(f"notify, redelivery after SENT: {len(again)} SQL statements, {again_trips} round trips")

    assert len(first) <= 3, first
    assert len(again) <= 1, again
    # Two transactions (pre-ping, statements, COMMIT, the pool's reset) and the read's own.
    assert first_trips <= 9 and again_trips <= 3, (first_trips, again_trips)
    assert len(smtp.recorder.for_order(order_id)) == 1


async def test_a_retry_after_a_temporary_failure_also_takes_at_most_three(
    runtime, counted, sessionmaker, smtp
):
    down = dataclasses.replace(
        runtime, settings=dataclasses.replace(runtime.settings, smtp_url="smtp://127.0.0.1:9")
    )
    order_id = await placed(runtime, sessionmaker)
    with pytest.raises(MailTemporaryError):
        await send_notification(down, order_id, "order.placed")
    step_runtime, seen = counted

    seen.reset()
    assert await send_notification(step_runtime, order_id, "order.placed") == NotificationStatus.SENT
    report(
        f"notify, retry after a temporary failure: {len(seen.statements)} SQL statements, "
        f"{seen.round_trips} round trips"
    )
    assert len(seen.statements) <= 3, seen.statements
