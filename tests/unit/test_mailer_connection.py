"""The mailer keeps its SMTP connection open between emails, on the test SMTP server (aiosmtpd):
one connection for successive emails, a new one when the server dropped it (the email sent once
all the same), never a second copy once the server may have the message, and refusals told
apart as before (5xx permanent, 4xx temporary)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from providers import mailer as mailer_module
from providers.emails import compose
from providers.mailer import MAX_CONNECTIONS, Mailer, MailPermanentError, MailTemporaryError
from tests.support.smtp import CountingServer


@pytest.fixture
def server():
    server = CountingServer().start()
    yield server
    server.stop()


def email(order_id: str | None = None, **values):
    return compose(
        **{
            "order_id": order_id or uuid.uuid4().hex,
            "reason": None,
            "total_cents": 1250,
            "currency": "EUR",
            "lines": [(1, "SKU-1")],
            "email": "ada@example.com",
            "name": "Ada",
            "event": "order.placed",
            "sender": "Shop <orders@shop.example>",
            **values,
        }
    )


def received(server: CountingServer, message) -> int:
    return len(server.recorder.for_order(message.message_id[1:33]))


async def wait_until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_successive_emails_go_over_one_connection(server):
    mailer = Mailer(server.url)
    messages = [email() for _ in range(6)]

    for message in messages:
        await mailer.send(message)
    await mailer.aclose()

    assert [received(server, m) for m in messages] == [1] * 6
    assert len(server.recorder.connections) == 1
    assert server.recorder.quits == 1  # closed politely


async def test_concurrent_sends_share_a_few_connections(server):
    mailer = Mailer(server.url)
    server.recorder.data_delay = 0.05  # so that sends overlap
    messages = [email() for _ in range(12)]

    await asyncio.gather(*(mailer.send(m) for m in messages))
    for message in [email() for _ in range(3)]:
        await mailer.send(message)
    await mailer.aclose()

    assert [received(server, m) for m in messages] == [1] * 12
    assert 1 < len(server.recorder.connections) <= MAX_CONNECTIONS


async def test_a_connection_the_server_closed_while_idle_is_replaced():
    server = CountingServer(timeout=0.3).start()  # aiosmtpd closes a connection idle for 0.3 s
    try:
        mailer = Mailer(server.url)
        first, second = email(), email()
        await mailer.send(first)
        await asyncio.sleep(0.8)
        await mailer.send(second)
        await mailer.aclose()

        assert (received(server, first), received(server, second)) == (1, 1)
        assert len(server.recorder.connections) == 2
    finally:
        server.stop()


async def test_a_connection_dropped_between_two_emails_is_reconnected(server):
    mailer = Mailer(server.url)
    first, second = email(), email()
    await mailer.send(first)

    server.drop_connection()
    await asyncio.sleep(0.1)
    await mailer.send(second)
    await mailer.aclose()

    assert (received(server, first), received(server, second)) == (1, 1)
    assert len(server.recorder.connections) == 2


@pytest.mark.parametrize("say_421", [False, True], ids=["closed", "421-then-closed"])
async def test_a_connection_that_fails_as_the_next_email_starts_is_reconnected_and_sent_once(server, say_421):
    """The client did not see the close coming: its MAIL meets a closed connection (or a 421)."""
    mailer = Mailer(server.url)
    first, second = email(), email()
    await mailer.send(first)

    server.recorder.drop_at_mail, server.recorder.say_421 = 1, say_421
    await mailer.send(second)
    await mailer.aclose()

    assert (received(server, first), received(server, second)) == (1, 1)
    assert len(server.recorder.connections) == 2
    assert server.recorder.mails == 3  # the second email's MAIL twice: on the old, then the new connection


async def test_reconnecting_is_tried_once_only(server):
    mailer = Mailer(server.url)
    await mailer.send(email())

    server.recorder.drop_at_mail = 2  # the old connection fails, and so does the new one
    with pytest.raises(MailTemporaryError):
        await mailer.send(message := email())
    assert received(server, message) == 0 and len(server.recorder.connections) == 2

    await mailer.send(message)  # and the server is fine again: a third connection
    await mailer.aclose()
    assert received(server, message) == 1 and len(server.recorder.connections) == 3


async def test_a_connection_lost_once_the_content_was_sent_does_not_send_it_again(server):
    mailer = Mailer(server.url)
    message = email()
    server.recorder.drop_after_data = 1  # the server keeps the message, the client never hears

    with pytest.raises(MailTemporaryError):  # not reported as sent: the ledger retries later
        await mailer.send(message)
    await asyncio.sleep(0.1)
    assert received(server, message) == 1  # and not sent a second time by the mailer
    assert len(server.recorder.connections) == 1

    await mailer.send(later := email())
    await mailer.aclose()
    assert received(server, later) == 1 and received(server, message) == 1


async def test_a_5xx_refusal_is_permanent_and_the_connection_serves_the_next_email(server):
    mailer = Mailer(server.url)
    refused, accepted = email(), email()
    server.recorder.refuse = True  # 550 to DATA

    with pytest.raises(MailPermanentError, match="550"):
        await mailer.send(refused)
    server.recorder.refuse = False
    await mailer.send(accepted)
    await mailer.aclose()

    assert (received(server, refused), received(server, accepted)) == (0, 1)
    assert len(server.recorder.connections) == 1


async def test_a_refused_recipient_is_permanent_and_the_transaction_reset_before_the_next_email(server):
    mailer = Mailer(server.url)
    refused, accepted = email(), email()
    server.recorder.refuse_recipients = True  # 550 to RCPT: MAIL was accepted, the transaction is open

    with pytest.raises(MailPermanentError, match="550"):
        await mailer.send(refused)
    server.recorder.refuse_recipients = False
    await mailer.send(accepted)
    await mailer.aclose()

    assert (received(server, refused), received(server, accepted)) == (0, 1)
    assert len(server.recorder.connections) == 1 and server.recorder.resets == 1


async def test_a_4xx_answer_is_temporary(server):
    mailer = Mailer(server.url)
    server.recorder.data_answer = "451 4.3.0 try again later"

    with pytest.raises(MailTemporaryError, match="451"):
        await mailer.send(email())
    server.recorder.data_answer = None
    await mailer.send(message := email())
    await mailer.aclose()
    assert received(server, message) == 1


async def test_a_send_over_budget_fails_and_its_connection_is_not_used_again(server, monkeypatch):
    monkeypatch.setattr(mailer_module, "SEND_BUDGET_SECONDS", 0.3)
    mailer = Mailer(server.url)
    server.recorder.data_delay = 1.0

    with pytest.raises(MailTemporaryError):
        await mailer.send(email())
    server.recorder.data_delay = 0
    await mailer.send(message := email())
    await mailer.aclose()

    assert received(server, message) == 1
    assert len(server.recorder.connections) == 2  # the timed-out one was closed mid-transaction


async def test_a_server_that_is_down_is_a_temporary_failure():
    with pytest.raises(MailTemporaryError):
        await Mailer("smtp://127.0.0.1:9").send(email())


async def test_a_closed_mailer_sends_nothing_more(server):
    mailer = Mailer(server.url)
    await mailer.send(email())
    await mailer.aclose()
    await wait_until(lambda: server.recorder.quits == 1)

    with pytest.raises(MailTemporaryError):
        await mailer.send(message := email())
    assert received(server, message) == 0
