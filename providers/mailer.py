"""Sending customer email over SMTP (aiosmtplib), telling temporary failures from permanent ones.

A :class:`Mailer` keeps its SMTP connections open and sends one message after another over
them (MAIL, RCPT, DATA), instead of connecting, greeting and quitting for every email. A worker
runs many notify steps at once on one event loop, so a mailer holds a few connections (opened
as they are needed, the most recently used taken first); each carries one message at a time.

A connection the server closed while it was idle (its idle timeout, a restart) is replaced: a
send that finds it gone before the server accepted anything of the message (MAIL or RCPT)
connects again and sends once more, within the same budget. Once the message's content has
been handed over (DATA) it is never sent again here: a connection lost then may or may not have
delivered it, and the error goes to the caller, whose ledger retries later (at least once; the
stable Message-ID lets mail clients drop a duplicate). A failure is never reported as sent.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from providers.emails import Email

#: The most one send may take, all SMTP commands together (each also has its own timeout):
#: the notify ledger's claim on a row must outlast it.
SEND_BUDGET_SECONDS = 30.0
#: Connections one mailer keeps at most (and so messages in flight at once).
MAX_CONNECTIONS = 4
#: A connection unused for longer is closed and replaced rather than trusted: servers and
#: firewalls drop idle connections, some silently (its next command would hang until its timeout).
MAX_IDLE_SECONDS = 60.0
#: How long closing may wait for the server's answer to QUIT.
QUIT_SECONDS = 2.0


class MailTemporaryError(Exception):
    """The mail server could not be reached or asked us to try later (4xx): retry."""


class MailPermanentError(Exception):
    """The mail server refused the message for good (5xx): retrying will not help."""


class _NotSent(Exception):
    """The connection failed before the server accepted any part of the message."""

    def __init__(self, error: Exception):
        super().__init__(repr(error))
        self.error = error


#: Failures that mean the connection is gone (or hung): closed by the server, reset, timed out.
_CONNECTION_LOST = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, ConnectionError, OSError)
#: SMTP's "service not available, closing transmission channel".
_CLOSING = 421


class Mailer:
    """Sends messages through the server named by an ``smtp://`` or ``smtps://`` URL, over
    connections it keeps open between sends; :meth:`aclose` closes them."""

    def __init__(
        self,
        smtp_url: str,
        timeout_seconds: float = 10.0,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_idle_seconds: float = MAX_IDLE_SECONDS,
    ):
        parts = urlsplit(smtp_url)
        self._options: dict[str, Any] = {
            "hostname": parts.hostname,
            "port": parts.port or (465 if parts.scheme == "smtps" else 25),
            "use_tls": parts.scheme == "smtps",
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "timeout": timeout_seconds,
            # A local sink offers no STARTTLS; a real relay given smtp:// may still upgrade.
            "start_tls": None,
        }
        self._max_idle = max_idle_seconds
        self._slots = asyncio.Semaphore(max_connections)
        #: Connected clients not in use: (client, when last used, whether its last transaction
        #: failed midway and needs RSET); the last one is taken first.
        self._idle: list[tuple[aiosmtplib.SMTP, float, bool]] = []
        self._closed = False

    async def send(self, message: Email) -> None:
        """Deliver ``message``; raises :class:`MailTemporaryError` or :class:`MailPermanentError`."""
        if not message.recipients:
            raise ValueError("No recipient provided in message")
        try:
            async with asyncio.timeout(SEND_BUDGET_SECONDS), self._slots:
                await self._send(message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [response.code for response in error.recipients]
            if all(500 <= code < 600 for code in codes):
                raise MailPermanentError(str(error)) from error
            raise MailTemporaryError(str(error)) from error
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600:
                raise MailPermanentError(f"{error.code} {error.message}") from error
            raise MailTemporaryError(f"{error.code} {error.message}") from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise MailTemporaryError(repr(error)) from error

    async def _send(self, message: Email) -> None:
        client = await self._take_idle()
        if client is not None:
            try:
                await self._deliver(client, message)
                return
            except _NotSent:
                pass  # the server closed it while it was idle: connect again, send once more
        client = await self._connect()
        try:
            await self._deliver(client, message)
        except _NotSent as failure:
            raise failure.error from None

    async def _deliver(self, client: aiosmtplib.SMTP, message: Email) -> None:
        """One mail transaction on ``client``; it goes back to the idle ones if still connected.

        Raises :class:`_NotSent` when the connection failed before the server accepted anything.
        """
        try:
            await _transaction(client, message)
        except _NotSent:
            client.close()
            raise
        except Exception:
            # Refused, or failed in DATA: the next message on it resets the transaction first.
            self._put_idle(client, reset=True)
            raise
        except BaseException:  # cancelled (the budget ran out): maybe mid-command, so unusable
            client.close()
            raise
        self._put_idle(client)

    async def _take_idle(self) -> aiosmtplib.SMTP | None:
        """The most recently used idle connection still open, reset if its last message failed."""
        now = asyncio.get_running_loop().time()
        while self._idle:
            client, used_at, reset = self._idle.pop()
            if not client.is_connected or now - used_at > self._max_idle:
                client.close()
                continue
            if reset:
                try:
                    await client.rset()
                except Exception:  # gone or confused: another connection will do
                    client.close()
                    continue
                except BaseException:
                    client.close()
                    raise
            return client
        return None

    def _put_idle(self, client: aiosmtplib.SMTP, *, reset: bool = False) -> None:
        if self._closed or not client.is_connected:
            client.close()
        else:
            self._idle.append((client, asyncio.get_running_loop().time(), reset))

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._closed:
            raise aiosmtplib.SMTPServerDisconnected("The mailer is closed")
        client = aiosmtplib.SMTP(**self._options)
        await client.connect()
        try:
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
        except BaseException:
            client.close()
            raise
        return client

    async def aclose(self) -> None:
        """Say QUIT on the idle connections and close them; connections in use close when their
        send ends. Sends after this fail (temporarily)."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(client) for client, _, _ in idle))


async def _transaction(client: aiosmtplib.SMTP, message: Email) -> None:
    """MAIL, RCPT and DATA for ``message`` on a connected, greeted ``client``."""
    options = []
    if client.supports_extension("size"):
        options.append(f"SIZE={len(message.data)}")
    if message.smtputf8:
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported(
                "An address containing non-ASCII characters was provided, but SMTPUTF8 is not "
                "supported by this server"
            )
        options.append("SMTPUTF8")
        if client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
    encoding = "utf-8" if message.smtputf8 else "ascii"
    try:
        await client.mail(message.sender, options=options, encoding=encoding)
        refused = []
        for recipient in message.recipients:
            try:
                await client.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as error:
                if error.code == _CLOSING and not client.is_connected:
                    raise _NotSent(error) from error
                refused.append(error)
    except _CONNECTION_LOST as error:
        raise _NotSent(error) from error
    except aiosmtplib.SMTPResponseException as error:
        if error.code == _CLOSING and not client.is_connected:
            raise _NotSent(error) from error
        raise
    if len(refused) == len(message.recipients):
        raise aiosmtplib.SMTPRecipientsRefused(refused)
    # From here on the server may have the message: whatever happens, it is not sent again here.
    await client.data(message.data)


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit(timeout=QUIT_SECONDS)
    except Exception:
        pass
    finally:
        client.close()


class Mailers:
    """A worker process's mailers, one per server URL (a runtime copied with other settings
    shares them), each keeping its connections open between sends; :meth:`aclose` closes all."""

    def __init__(self) -> None:
        self._by_url: dict[str, Mailer] = {}

    def get(self, smtp_url: str) -> Mailer:
        mailer = self._by_url.get(smtp_url)
        if mailer is None:
            mailer = self._by_url[smtp_url] = Mailer(smtp_url)
        return mailer

    async def aclose(self) -> None:
        mailers, self._by_url = list(self._by_url.values()), {}
        await asyncio.gather(*(mailer.aclose() for mailer in mailers))
