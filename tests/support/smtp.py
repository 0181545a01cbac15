"""A real SMTP server (aiosmtpd) run by a test, keeping what it receives in memory."""

from __future__ import annotations

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
        self._controller = Controller(
            self.recorder, hostname="127.0.0.1", port=self.port, server_hostname="test-smtp.local"
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
