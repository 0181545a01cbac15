"""The dev SMTP sink: accepts every message, keeps it as an .eml file, lists them over HTTP.

Run it with the ``mail`` console script (``main``): SMTP on $SMTP_PORT, files in $MAIL_DIR,
``GET /messages[?to=address]`` and ``DELETE /messages`` on $MAIL_WEB_PORT (by default the port
after SMTP_PORT, so a second fleet with its own SMTP_PORT gets its own listing too). The files
are the store, so messages outlive a restart and can be opened with any mail client.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox import _entry

log = structlog.get_logger()

# Envelope data is not part of the message itself (Bcc recipients, for one), so it is kept
# in headers of our own, the way aiosmtpd's own handlers do it.
_FROM = "X-Envelope-From"
_TO = "X-Envelope-To"
_RECEIVED_AT = "X-Received-At"


class MailSink:
    """An SMTP server on the running loop that stores each received message in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], host: str, port: int) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port  # 0 picks a free port; the real one is set by start()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Create the directory if missing and start accepting SMTP connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        # A fixed hostname: aiosmtpd would otherwise look up the FQDN on every connection.
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="mail-sink.local", loop=loop), self.host, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mail.smtp.listening", host=self.host, port=self.port, directory=str(self.directory))

    async def stop(self) -> None:
        """Stop accepting connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd hook: keep the message; any recipient is accepted."""
        now = datetime.now(UTC)
        received_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        envelope_headers = (
            f"{_FROM}: {envelope.mail_from}\r\n"
            f"{_TO}: {', '.join(envelope.rcpt_tos)}\r\n"
            f"{_RECEIVED_AT}: {received_at}\r\n"
        ).encode()
        # decode_data is off, so content is the raw bytes as received.
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        name = await asyncio.to_thread(self._write, envelope_headers + content)
        log.info("mail.received", id=name, mail_from=envelope.mail_from, to=envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def _write(self, data: bytes) -> str:
        # Time first so names sort in arrival order; written aside and renamed so a reader
        # never sees half a message.
        name = f"{time.time_ns()}-{secrets.token_hex(4)}"
        partial = self.directory / f".{name}.partial"
        partial.write_bytes(data)
        os.replace(partial, self.directory / f"{name}.eml")
        return name


def list_messages(directory: str | os.PathLike[str], to: str | None = None) -> list[dict[str, Any]]:
    """Return the stored messages, oldest first, optionally only those sent to ``to``."""
    messages = []
    for path in sorted(Path(directory).glob("*.eml")):
        try:
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        except FileNotFoundError:  # cleared while we were listing
            continue
        summary = _summary(path.stem, message)
        if to is None or to.lower() in (address.lower() for address in summary["to"]):
            messages.append(summary)
    return messages


def clear_messages(directory: str | os.PathLike[str]) -> int:
    """Delete every stored message; return how many there were."""
    deleted = 0
    for path in Path(directory).glob("*.eml"):
        path.unlink(missing_ok=True)
        deleted += 1
    return deleted


def _summary(message_id: str, message: EmailMessage) -> dict[str, Any]:
    recipients = str(message.get(_TO, ""))
    return {
        "id": message_id,
        "from": str(message.get(_FROM, "")) or str(message.get("From", "")),
        "to": [address.strip() for address in recipients.split(",") if address.strip()],
        "subject": str(message.get("Subject", "")),
        "received_at": str(message.get(_RECEIVED_AT, "")),
        "text": _text(message),
    }


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, ValueError):  # unknown charset or broken encoding: show what we can
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    # SMTP carries CRLF; readers of the JSON listing expect plain newlines.
    return text.replace("\r\n", "\n")


SINK = web.AppKey("mail_sink", MailSink)


async def _get_messages(request: web.Request) -> web.Response:
    messages = await asyncio.to_thread(list_messages, request.app[SINK].directory, request.query.get("to"))
    return web.json_response(messages)


async def _delete_messages(request: web.Request) -> web.Response:
    deleted = await asyncio.to_thread(clear_messages, request.app[SINK].directory)
    log.info("mail.cleared", deleted=deleted)
    return web.json_response({"deleted": deleted})


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _run_sink(app: web.Application) -> AsyncIterator[None]:
    await app[SINK].start()
    yield
    await app[SINK].stop()


def create_app(
    *, directory: str | os.PathLike[str], smtp_host: str = "127.0.0.1", smtp_port: int = 8025
) -> web.Application:
    """Build the HTTP listing app; starting it also starts the SMTP sink (``app[SINK]``)."""
    app = web.Application()
    app[SINK] = MailSink(directory, smtp_host, smtp_port)
    app.cleanup_ctx.append(_run_sink)
    app.add_routes(
        [
            web.get("/messages", _get_messages),
            web.delete("/messages", _delete_messages),
            web.get("/healthz", _healthz),
        ]
    )
    return app


def main() -> None:
    """Console entry ``mail``: SMTP sink on 127.0.0.1:$SMTP_PORT, listing on $MAIL_WEB_PORT.

    A port that is taken ends the process with one line (``_entry.serve``): under honcho that
    stops the whole fleet, which is why the listing's port follows SMTP_PORT by default.
    """
    settings = _entry.start("mail")
    app = create_app(directory=settings.mail_dir, smtp_port=settings.smtp_port)
    assert settings.mail_web_port is not None  # load_settings derives it from SMTP_PORT
    _entry.serve(app, settings.mail_web_port)


if __name__ == "__main__":
    main()
