"""Delivery of the sandbox provider's webhooks: signed, retried with backoff until acknowledged.

Each event is delivered by its own background task, so one receiver outage or one delayed
event never holds back the others. Like a real provider, order between events is not
guaranteed, and an event keeps its id across retries so the receiver can deduplicate.

Each :class:`Webhook` carries its own body and signing (header name and secret): the native
face signs with ``PSP-Signature``, the Stripe face with ``Stripe-Signature``, both to one URL.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from providers.webhook_signature import HEADER, sign

log = structlog.get_logger()

# A receiver that hangs must not stall its event forever; the attempt is retried instead.
ATTEMPT_TIMEOUT_SECONDS = 10.0


@dataclass
class Delivery:
    """How delivery of one event is going, for tests and chaos checks."""

    attempts: int = 0
    delivered: bool = False
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The delivery state as the API shows it."""
        return {"attempts": self.attempts, "delivered": self.delivered, "last_error": self.last_error}


@dataclass(frozen=True)
class Webhook:
    """One event as it goes out: the JSON body, and the header and secret that sign it."""

    id: str
    body: dict[str, Any]
    signature_header: str
    secret: str
    # What the delivery log lines say about it, so one order can be followed through them.
    log_fields: dict[str, Any] = field(default_factory=dict)


def native_webhook(event: dict[str, Any], secret: str) -> Webhook:
    """A ledger event as the native face sends it: the event itself, signed with ``PSP-Signature``."""
    data = event.get("data", {})
    fields = {
        "event_id": event["id"],
        "event_type": event["type"],
        "payment_id": data.get("payment_id"),
        "order_id": data.get("metadata", {}).get("order_id"),
    }
    if "refund_id" in data:
        fields["refund_id"] = data["refund_id"]
    return Webhook(id=event["id"], body=event, signature_header=HEADER, secret=secret, log_fields=fields)


class WebhookSender:
    """Posts webhooks to one URL until each is answered with a 2xx status."""

    def __init__(self, url: str, *, retry_base_seconds: float, retry_max_seconds: float) -> None:
        self.url = url
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.deliveries: dict[str, Delivery] = {}

    async def start(self) -> None:
        """Open the HTTP session; call from inside the running loop."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_SECONDS))

    async def close(self) -> None:
        """Stop every pending delivery and close the session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def send(self, webhook: Webhook, delay_seconds: float = 0.0) -> None:
        """Deliver ``webhook`` in the background, starting after ``delay_seconds``."""
        if self._session is None:
            raise RuntimeError("WebhookSender.send() before start()")
        self.deliveries[webhook.id] = Delivery()
        task = asyncio.create_task(self._deliver(webhook, delay_seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, webhook: Webhook, delay_seconds: float) -> None:
        fields = webhook.log_fields
        if delay_seconds > 0:
            log.info("psp.webhook.delayed", delay_s=delay_seconds, **fields)
            await asyncio.sleep(delay_seconds)
        body = json.dumps(webhook.body, separators=(",", ":")).encode()
        delivery = self.deliveries[webhook.id]
        backoff = self._retry_base
        while True:
            delivery.attempts += 1
            error = await self._attempt(webhook, body)
            if error is None:
                delivery.delivered = True
                delivery.last_error = None
                log.info("psp.webhook.delivered", attempt=delivery.attempts, **fields)
                return
            delivery.last_error = error
            log.warning(
                "psp.webhook.failed", attempt=delivery.attempts, error=error, retry_in_s=backoff, **fields
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._retry_max)

    async def _attempt(self, webhook: Webhook, body: bytes) -> str | None:
        """POST once; return None when acknowledged, else why not."""
        assert self._session is not None
        # Signed per attempt: the receiver rejects stale timestamps, and retries can last long.
        # Both faces sign alike (HMAC-SHA256 of "{t}.{body}", ``t=...,v1=...``); only the
        # header's name and the secret differ.
        headers = {webhook.signature_header: sign(webhook.secret, body), "Content-Type": "application/json"}
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}".rstrip(": ")
        except Exception as exc:
            log.exception("psp.webhook.error")
            return f"{type(exc).__name__}: {exc}"
