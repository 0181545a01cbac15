"""Sending customer email over SMTP (aiosmtplib), telling temporary failures from permanent ones."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import asyncio

import aiosmtplib

#: The most one send may take, all SMTP commands together (each also has its own timeout):
#: the notify ledger's claim on a row must outlast it.
SEND_BUDGET_SECONDS = 30.0


class MailTemporaryError(Exception):
    """The mail server could not be reached or asked us to try later (4xx): retry."""


class MailPermanentError(Exception):
    """The mail server refused the message for good (5xx): retrying will not help."""


class Mailer:
    """Sends messages through the server named by an ``smtp://`` or ``smtps://`` URL."""

    def __init__(self, smtp_url: str, timeout_seconds: float = 10.0):
        parts = urlsplit(smtp_url)
        self._options = {
            "hostname": parts.hostname,
            "port": parts.port or (465 if parts.scheme == "smtps" else 25),
            "use_tls": parts.scheme == "smtps",
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "timeout": timeout_seconds,
            # A local sink offers no STARTTLS; a real relay given smtp:// may still upgrade.
            "start_tls": None,
        }

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message``; raises :class:`MailTemporaryError` or :class:`MailPermanentError`."""
        try:
            async with asyncio.timeout(SEND_BUDGET_SECONDS):
                await aiosmtplib.send(message, **self._options)
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
