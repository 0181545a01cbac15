"""Client of the payment provider (PSP); the worker reaches the provider only through it.

A real provider adapter can replace it as long as it offers the same three calls. Every call
carries an idempotency key chosen by the caller, so a retried step never pays twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


class ProviderError(Exception):
    """The provider could not be reached or failed; the call may be retried."""


class ProviderRefused(Exception):
    """The provider answered that the request can never succeed (4xx)."""

    def __init__(self, status: int, code: str, detail: str = ""):
        self.status, self.code = status, code
        super().__init__(f"provider refused ({status} {code}) {detail}".strip())


@dataclass(frozen=True)
class ProviderPayment:
    id: str
    status: str
    checkout_url: str | None


@dataclass(frozen=True)
class ProviderRefund:
    id: str
    status: str


class PaymentProvider:
    """HTTP client of the PSP at ``base_url``; open it with ``async with`` or call :meth:`close`."""

    def __init__(self, base_url: str, timeout_seconds: float = 10.0):
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Release the connection pool."""
        if self._session is not None:
            await self._session.close()

    async def _post(self, path: str, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        try:
            async with self._client().post(self._base_url + path, json=body, headers=headers) as response:
                payload = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ProviderError(f"{path}: {error!r}") from error
        if status >= 500:
            raise ProviderError(f"{path}: provider answered {status}")
        if status >= 400:
            error = (payload or {}).get("error", {}) if isinstance(payload, dict) else {}
            raise ProviderRefused(status, str(error.get("code", "refused")), str(error.get("message", "")))
        return payload

    async def create_payment(self, *, idempotency_key: str, amount_cents: int, currency: str, method: str,
                             token: str | None, metadata: dict[str, str]) -> ProviderPayment:
        """Create (or, with the same key, find again) a payment at the provider."""
        body: dict[str, Any] = {"amount_cents": amount_cents, "currency": currency, "method": method,
                                "metadata": metadata}
        if token is not None:
            body["token"] = token
        data = await self._post("/v1/payments", body, idempotency_key)
        return ProviderPayment(id=data["id"], status=data["status"], checkout_url=data.get("checkout_url"))

    async def cancel_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Cancel a payment still pending; ``ProviderRefused`` with code ``already_succeeded`` if paid."""
        data = await self._post(f"/v1/payments/{provider_payment_id}/cancel", {})
        return ProviderPayment(id=data["id"], status=data["status"], checkout_url=data.get("checkout_url"))

    async def refund(self, *, idempotency_key: str, provider_payment_id: str) -> ProviderRefund:
        """Refund a succeeded payment in full (the same key never refunds twice)."""
        data = await self._post("/v1/refunds", {"payment_id": provider_payment_id}, idempotency_key)
        return ProviderRefund(id=data["id"], status=data["status"])
