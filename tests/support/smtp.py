"""A real SMTP server (aiosmtpd) run by a test, keeping what it receives in memory."""

from __future__ import annotations

import asyncio
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.fleet import free_port


class Recorder:
    """aiosmtpd handler: stores every message; ``refuse`` makes it answer 550 instead."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        # (wall-clock time.time() of arrival, message): how late an email came, next to what it was.
        self.arrivals: list[tuple[float, EmailMessage]] = []
        self.refuse = False
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "550 mailbox unavailable"
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)
            self.arrivals.append((time.time(), message))
        return "250 OK"

    def received(self) -> list[tuple[float, EmailMessage]]:
        """A copy of every (arrival time, message) so far, in arrival order."""
        with self._lock:
            return list(self.arrivals)

    def for_order(self, order_id: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["X-Order-Id"] == order_id]


class SmtpServer:
    """Start with :meth:`start`; ``url`` is what SMTP_URL should say."""

    def __init__(self):
        self.recorder = Recorder()
        self.port = free_port()
        self._running = False
        self._controller = Controller(
            self.recorder, hostname="127.0.0.1", port=self.port, server_hostname="test-smtp.local"
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop serving; a second call does nothing (a test may stop it before its fixture does)."""
        if self._running:
            self._controller.stop()
            self._running = False


class Counting(Recorder):
    """The test server's recorder, also counting connections and commands, and misbehaving on demand."""

    def __init__(self):
        super().__init__()
        self.connections: list[tuple[str, int]] = []  # the client's address at each EHLO
        self.resets = 0
        self.quits = 0
        self.mails = 0
        #: Answer this many MAIL commands by closing the connection (a 421 first, if ``say_421``).
        self.drop_at_mail = 0
        self.say_421 = False
        self.refuse_recipients = False
        #: Keep this many messages, then close the connection without answering DATA.
        self.drop_after_data = 0
        self.data_answer: str | None = None
        self.data_delay = 0.0
        #: The server-side connection of the last message, to drop it from the test.
        self.last_server = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.connections.append(session.peer)
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mails += 1
        if self.drop_at_mail:
            self.drop_at_mail -= 1
            if self.say_421:
                server.transport.write(b"421 4.4.2 test-smtp.local closing connection\r\n")
            server.transport.close()
            return "421 4.4.2 closing"  # not heard: the connection is closed
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_recipients:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        self.resets += 1
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server, session, envelope):
        self.last_server = server
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_answer:
            return self.data_answer
        answer = await super().handle_DATA(server, session, envelope)
        if self.drop_after_data:
            self.drop_after_data -= 1
            server.transport.close()  # the message is kept, but the client never hears so
        return answer


class CountingServer(SmtpServer):
    """The server above with the counting recorder (and aiosmtpd options); the mailer's tests use it."""

    def __init__(self, **smtp_options):
        super().__init__()
        self.recorder = Counting()
        self._controller = Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="test-smtp.local",
            **smtp_options,
        )

    def drop_connection(self) -> None:
        """Close the server's side of the last message's connection, as an idle timeout would."""
        server = self.recorder.last_server
        self._controller.loop.call_soon_threadsafe(server.transport.close)
