"""`orders-admin` against the real database and RabbitMQ vhost of this run, called in-process."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from contextlib import contextmanager

import pika
import pytest
import structlog
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import select, text

from actors.cancel import cancel_order
from models.refunds import start_refund
from models.tables import Order, OutboxMessage, ReconciliationReport, orders_archive
from ops.cli import main
from tests.support.factories import available
from tests.support.polling import eventually_sync
from tests.support.scenarios import awaiting_payment, make_hold_due, placed_order


@pytest.fixture
def admin_env(settings, monkeypatch):
    """The environment `orders-admin` reads, pointing at this run; logging put back afterwards."""
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "BROKER_URL": settings.broker_url,
        "REDIS_URL": settings.redis_url,
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(name, value)
    root, pika_logger = logging.getLogger(), logging.getLogger("pika")
    handlers, level, pika_level = root.handlers[:], root.level, pika_logger.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    pika_logger.setLevel(pika_level)
    structlog.reset_defaults()


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


async def admin(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `orders-admin ARGV` (on a thread: it runs its own event loop) -> (exit code, stdout, stderr)."""
    capsys.readouterr()  # what the test's own steps logged (structlog prints to stdout by default)
    code = await asyncio.to_thread(run, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@contextmanager
def rabbit(settings):
    """A dramatiq broker on this run's vhost (declares queues as the workers do)."""
    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=[])
    try:
        yield broker
    finally:
        broker.close()


def depth(broker: RabbitmqBroker, queue: str) -> int:
    return broker.channel.queue_declare(queue, passive=True).method.message_count


def message_ids_in(broker: RabbitmqBroker, queue: str) -> list[str]:
    """Ids of the messages in ``queue``, peeked and put back."""
    channel = broker.connection.channel()
    ids = []
    try:
        for _ in range(channel.queue_declare(queue, passive=True).method.message_count):
            method, _, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            ids.append(Message.decode(body).message_id)
    finally:
        channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
        channel.close()
    return ids


def failed_message(queue: str, order_id: str) -> Message:
    """A message as dramatiq leaves it after its last retry failed."""
    return Message(
        queue_name=queue,
        actor_name="reserve",
        args=(),
        kwargs={"order_id": order_id},
        options={
            "retries": 26,
            "max_retries": 25,
            "requeue_timestamp": 1,
            "traceback": 'Traceback (most recent call last):\n  File "x.py", line 1\n'
            "RuntimeError: database went away\n",
        },
    )


def dead_letter_through_rabbitmq(broker: RabbitmqBroker, message: Message) -> None:
    """Publish ``message`` to its queue and reject it there, so RabbitMQ dead-letters it to ``.XQ``."""
    queue = message.queue_name
    broker.declare_queue(queue, ensure=True)
    broker.channel.basic_publish("", queue, message.encode(), pika.BasicProperties(delivery_mode=2))
    method, _, body = broker.channel.basic_get(queue, auto_ack=False)
    assert Message.decode(body).message_id == message.message_id
    broker.channel.basic_reject(method.delivery_tag, requeue=False)
    eventually_sync(lambda: depth(broker, f"{queue}.XQ") == 1, what="the message to be dead-lettered")


async def test_order_shows_history_holds_payments_and_outbox(runtime, sessionmaker, admin_env, capsys):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)

    code, out, _ = await admin(capsys, "order", order_id)

    assert code == 0
    assert out.startswith(f"order {order_id}\n") and "archived" not in out.splitlines()[0]
    assert "status:      AWAITING_PAYMENT" in out
    history = out.split("history (2):")[1].split("\n\n")[0]
    assert history.index("PENDING") < history.index("AWAITING_PAYMENT")
    holds = out.split("holds (1):")[1].split("\n\n")[0]
    assert sku in holds and "HELD" in holds
    outbox = out.split("outbox (")[1].split("\n\n")[0]
    assert "step pay" in outbox and "step expire" in outbox

    code, out, _ = await admin(capsys, "order", order_id, "--json")

    assert code == 0
    document = json.loads(out)
    assert (document["id"], document["status"], document["archived"]) == (order_id, "AWAITING_PAYMENT", False)
    assert [entry["status"] for entry in document["history"]] == ["PENDING", "AWAITING_PAYMENT"]
    assert [(h["sku"], h["quantity"], h["state"]) for h in document["holds"]] == [(sku, 2, "HELD")]
    [payment] = document["payments"]
    assert payment["attempt"] == 1 and payment["status"] == "PENDING" and payment["provider_payment_id"]
    assert "token" not in payment
    assert {"pay", "expire"} <= {row["actor"] for row in document["outbox"]}
    assert all(row["created_at"].endswith("Z") for row in document["outbox"])


async def test_order_shows_refunds_and_returns(runtime, sessionmaker, admin_env, capsys):
    order_id = await placed_order(runtime, sessionmaker)
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        assert order is not None and order.payment is not None
        refund = await start_refund(uow, order, order.payment, reason="goodwill", amount_cents=300)
        await uow.commit()

    code, out, _ = await admin(capsys, "order", order_id)

    assert code == 0
    refunds = out.split("refunds (1):")[1].split("\n\n")[0]
    assert refund.id in refunds and "300" in refunds and "PENDING" in refunds and "goodwill" in refunds
    assert "returns: none" in out
    payments = out.split("payments (1):")[1].split("\n\n")[0]
    assert "REFUND_PENDING" in payments

    code, out, _ = await admin(capsys, "order", order_id, "--json")

    document = json.loads(out)
    assert [(r["id"], r["amount_cents"], r["status"]) for r in document["refunds"]] == [
        (refund.id, 300, "PENDING")
    ]
    assert document["returns"] == [] and document["payments"][0]["refunded_cents"] == 0


async def test_order_with_provider_puts_the_providers_records_beside_ours(
    runtime, sessionmaker, admin_env, psp_url, monkeypatch, capsys
):
    monkeypatch.setenv("PSP_URL", psp_url)
    order_id = await placed_order(runtime, sessionmaker)

    code, out, _ = await admin(capsys, "order", order_id, "--provider", "--json")

    assert code == 0
    document = json.loads(out)
    [payment] = document["payments"]
    assert document["at_provider"] == [
        {
            "kind": "payment",
            "id": payment["id"],
            "provider_id": payment["provider_payment_id"],
            "ours": "SUCCEEDED",
            "status": "succeeded",
            "amount_cents": payment["amount_cents"],
            "currency": payment["currency"],
            "note": None,
        }
    ]

    monkeypatch.setenv("PSP_URL", "http://127.0.0.1:9")  # nothing listens there
    code, out, _ = await admin(capsys, "order", order_id, "--provider")

    assert code == 0
    provider = out.split("at the provider (1):")[1].split("\n\n")[0]
    assert payment["provider_payment_id"] in provider and "not answered" in provider


async def test_unknown_order_exits_1(admin_env, capsys):
    missing = uuid.uuid4().hex

    code, out, err = await admin(capsys, "order", missing)

    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == f"error: no order {missing}"


async def test_reconcile_dry_run_finds_drift_and_repair_fixes_it(runtime, sessionmaker, admin_env, capsys):
    _, sku = await awaiting_payment(runtime, sessionmaker)  # holds 2 of 5
    async with sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE stock SET available = available - 2 WHERE sku = :sku"), {"sku": sku}
        )

    code, out, _ = await admin(capsys, "reconcile")

    assert code == 1
    [line] = [line for line in out.splitlines() if line.strip().startswith(f"{sku}:")]
    assert "drift +2" in line and "would set available 1 -> 3" in line
    assert "dry run: nothing changed; run with --repair to fix" in out
    assert await available(sessionmaker, sku) == 1

    code, out, _ = await admin(capsys, "reconcile", "--repair")

    assert code == 0
    [line] = [line for line in out.splitlines() if line.strip().startswith(f"{sku}:")]
    assert "; set available 1 -> 3" in line
    assert await available(sessionmaker, sku) == 3
    async with sessionmaker() as session:
        report = await session.scalar(select(ReconciliationReport).order_by(ReconciliationReport.id.desc()))
    assert report.repaired and any(d["sku"] == sku and d["repaired"] for d in report.details)
    assert f"report #{report.id} stored" in out

    code, out, _ = await admin(capsys, "reconcile")

    assert sku not in out


async def test_dead_letters_list_and_replay_a_queue(settings, admin_env, capsys):
    queue = f"ops_{uuid.uuid4().hex[:10]}"
    order_id = uuid.uuid4().hex
    message = failed_message(queue, order_id)
    with rabbit(settings) as broker:
        dead_letter_through_rabbitmq(broker, message)

        code, out, _ = await admin(capsys, "dead-letters", "list", "--queue", queue)

        assert code == 0
        assert f"{queue}.XQ: 1 message(s)" in out
        assert f"{message.message_id}  reserve(order_id={order_id})" in out
        assert "retries 26" in out and "error: RuntimeError: database went away" in out
        assert f"dead-lettered: rejected from {queue}" in out
        assert depth(broker, f"{queue}.XQ") == 1

        code, out, _ = await admin(capsys, "dead-letters", "list", "--queue", f"{queue}.XQ", "--json")

        assert code == 0
        [listing] = json.loads(out)["queues"]
        [letter] = listing["shown"]
        assert (letter["message_id"], letter["kwargs"], letter["retries"]) == (
            message.message_id,
            {"order_id": order_id},
            26,
        )
        assert letter["dead_lettered"]["reason"] == "rejected"

        code, out, _ = await admin(capsys, "dead-letters", "replay", "--queue", queue, "--all", "--dry-run")

        assert code == 0 and "would replay" in out and "nothing moved" in out
        assert (depth(broker, f"{queue}.XQ"), depth(broker, queue)) == (1, 0)

        code, out, _ = await admin(capsys, "dead-letters", "replay", "--queue", queue, "--all")

        assert code == 0
        assert f"replayed {message.message_id}" in out and f"{queue}.XQ -> {queue}" in out
        assert "1 message(s) replayed" in out
        assert depth(broker, f"{queue}.XQ") == 0
        method, properties, body = broker.channel.basic_get(queue, auto_ack=True)
        assert method is not None and properties.delivery_mode == 2
        replayed = Message.decode(body)
        assert (replayed.message_id, replayed.actor_name, replayed.kwargs) == (
            message.message_id,
            "reserve",
            {"order_id": order_id},
        )
        assert "retries" not in replayed.options and "traceback" not in replayed.options
        assert replayed.options["max_retries"] == 25 and replayed.options["dead_letter_replays"] == 1


async def test_dead_letters_of_step_queues_by_message_id(settings, admin_env, capsys):
    order_id = uuid.uuid4().hex
    message = failed_message("reserve", order_id)
    with rabbit(settings) as broker:
        broker.declare_queue("reserve", ensure=True)
        broker.channel.basic_publish(
            "", "reserve.XQ", message.encode(), pika.BasicProperties(delivery_mode=2)
        )

        code, out, _ = await admin(capsys, "dead-letters", "list")

        assert code == 0
        assert f"{message.message_id}  reserve(order_id={order_id})" in out
        assert "reserve.XQ:" in out

        code, out, err = await admin(capsys, "dead-letters", "replay", "--message-id", uuid.uuid4().hex)

        assert code == 1 and "error: no dead-lettered message" in err
        assert message.message_id in message_ids_in(broker, "reserve.XQ")

        code, out, _ = await admin(capsys, "dead-letters", "replay", "--message-id", message.message_id)

        assert code == 0 and "reserve.XQ -> reserve" in out
        assert message.message_id not in message_ids_in(broker, "reserve.XQ")
        assert message.message_id in message_ids_in(broker, "reserve")


async def test_unreachable_services_give_one_line_errors(settings, admin_env, monkeypatch, capsys):
    monkeypatch.setenv("BROKER_URL", "amqp://guest:secret@127.0.0.1:1/%2F")

    code, out, err = await admin(capsys, "dead-letters", "list")

    assert (code, out) == (1, "")
    assert err == "error: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F: Connection refused\n"

    monkeypatch.setenv("BROKER_URL", f"{settings.broker_url}-missing")
    code, out, err = await admin(capsys, "redrive")

    assert (code, out) == (1, "")
    assert (
        err.startswith("error: cannot reach RabbitMQ at ") and "NOT_ALLOWED" in err and err.count("\n") == 1
    )

    monkeypatch.setenv("DATABASE_URL", "mysql+aiomysql://root@127.0.0.1:1/orders")
    code, out, err = await admin(capsys, "order", uuid.uuid4().hex)

    assert (code, out) == (1, "")
    assert err.startswith("error: cannot reach the database at mysql+aiomysql://root@127.0.0.1:1/orders: ")
    assert err.count("\n") == 1


async def test_archive_moves_a_cancelled_order_which_stays_inspectable(
    runtime, sessionmaker, admin_env, capsys, monkeypatch
):
    order_id, _ = await awaiting_payment(runtime, sessionmaker)
    assert await cancel_order(runtime, order_id, "customer_cancelled") == "CANCELLED"
    await runtime.publisher.flush()  # its messages' logs must not land in the command's output
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal: draw the bar

    code, out, err = await admin(capsys, "archive", "--older-than-seconds", "0", "--batch-size", "50")

    assert code == 0 and out.startswith("archived ")
    assert "archiving: 100%" in err and "archive.batch" in err
    assert int(out.split()[1]) >= 1
    async with sessionmaker() as session:
        assert await session.scalar(select(Order.id).where(Order.id == order_id)) is None
        assert (
            await session.scalar(select(orders_archive.c.status).where(orders_archive.c.id == order_id))
            == "CANCELLED"
        )

    code, out, _ = await admin(capsys, "order", order_id, "--json")

    assert code == 0
    document = json.loads(out)
    assert document["archived"] and document["archived_at"]
    assert (document["status"], document["reason"]) == ("CANCELLED", "customer_cancelled")
    assert [entry["status"] for entry in document["history"]][-1] == "CANCELLED"
    assert [hold["state"] for hold in document["holds"]] == ["RELEASED"]

    code, out, _ = await admin(capsys, "order", order_id)

    assert code == 0 and out.splitlines()[0].startswith(f"order {order_id}  [archived ")


async def test_redrive_requeues_an_overdue_hold_and_prints_counts(runtime, sessionmaker, admin_env, capsys):
    order_id, _ = await awaiting_payment(runtime, sessionmaker)
    await make_hold_due(sessionmaker, order_id, seconds_ago=120)

    async def expires() -> list[OutboxMessage]:
        async with sessionmaker() as session:
            return list(
                (
                    await session.scalars(
                        select(OutboxMessage).where(
                            OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "expire"
                        )
                    )
                ).all()
            )

    before = len(await expires())

    code, out, _ = await admin(capsys, "redrive")

    assert code == 0
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.startswith("  ")}
    assert set(counts) == {
        "hold_overdue",
        "pending_stuck",
        "payment_unrequested",
        "refund_unrequested",
        "email_abandoned",
    }
    assert counts["hold_overdue"] >= 1
    assert f"re-enqueued {sum(counts.values())} step(s)" in out
    after = await expires()
    assert len(after) == before + 1
    assert all(row.sent_at is not None for row in after)  # published (confirmed) before the command ended
