"""Client of the sandbox payment provider (``sandbox/psp.py``), over its own HTTP API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from providers.payments.provider import (
    ProviderError,
    ProviderPayment,
    ProviderPaymentDetails,
    ProviderRefund,
    ProviderRefundDetails,
    ProviderRefused,
    amount_or_none,
)


class SandboxProvider:
    """HTTP client of the sandbox PSP at ``base_url``; call :meth:`close` when done."""

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

    async def _request(self, method: str, url: str | URL, **options: Any) -> Any:
        """The provider's JSON answer; ``ProviderError`` when it cannot be had, ``ProviderRefused``
        for a 4xx."""
        path = URL(url).path
        try:
            async with self._client().request(method, url, **options) as response:
                payload = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ProviderError(f"{path}: {error!r}") from error
        if status >= 500:
            raise ProviderError(f"{path}: provider answered {status}")
        if status >= 400:
            refusal = (payload or {}).get("error", {}) if isinstance(payload, dict) else {}
            raise ProviderRefused(
                status, str(refusal.get("code", "refused")), str(refusal.get("message", ""))
            )
        return payload

    async def _post(
        self, path: str, body: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._request("POST", self._base_url + path, json=body, headers=headers)

    async def create_payment(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        method: str,
        token: str | None,
        metadata: dict[str, str],
    ) -> ProviderPayment:
        """Create (or, with the same key, find again) a payment at the provider."""
        body: dict[str, Any] = {
            "amount_cents": amount_cents,
            "currency": currency,
            "method": method,
            "metadata": metadata,
        }
        if token is not None:
            body["token"] = token
        data = await self._post("/v1/payments", body, idempotency_key)
        return ProviderPayment(id=data["id"], status=data["status"], checkout_url=data.get("checkout_url"))

    async def cancel_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Cancel a payment still pending; ``ProviderRefused`` with code ``already_succeeded`` if paid."""
        data = await self._post(f"/v1/payments/{provider_payment_id}/cancel", {})
        return ProviderPayment(id=data["id"], status=data["status"], checkout_url=data.get("checkout_url"))

    async def refund(
        self,
        *,
        idempotency_key: str,
        provider_payment_id: str,
        amount_cents: int,
        metadata: dict[str, str],
    ) -> ProviderRefund:
        """Refund ``amount_cents`` of a succeeded payment (the same key never refunds twice);
        ``ProviderRefused`` when the provider will not (e.g. more than is left)."""
        body = {"payment_id": provider_payment_id, "amount_cents": amount_cents, "metadata": metadata}
        data = await self._post("/v1/refunds", body, idempotency_key)
        return ProviderRefund(id=data["id"], status=data["status"])

    async def _get_object(self, collection: str, object_id: str) -> dict[str, Any] | None:
        """The provider's object ``object_id`` of ``collection`` (``payments``, ``refunds``); None
        when it has none (404)."""
        # One quoted path segment, sent as is: whatever the id holds, it cannot reach another resource.
        url = URL(f"{self._base_url}/v1/{collection}/{quote(object_id, safe='')}", encoded=True)
        try:
            data = await self._request("GET", url)
        except ProviderRefused as refusal:
            if refusal.status == 404:
                return None
            raise
        if not isinstance(data, dict) or data.get("id") != object_id:
            # A provider answering about some other object is broken; ask again later.
            raise ProviderError(f"{url.path}: the answer is not about the object asked for")
        return data

    async def get_refund(self, provider_refund_id: str) -> ProviderRefundDetails | None:
        """The provider's own record of a refund; None when it has no such refund (404)."""
        data = await self._get_object("refunds", provider_refund_id)
        if data is None:
            return None
        metadata, currency, payment_id = data.get("metadata"), data.get("currency"), data.get("payment_id")
        return ProviderRefundDetails(
            id=provider_refund_id,
            payment_id=payment_id if isinstance(payment_id, str) else None,
            status=str(data.get("status", "")),
            amount_cents=amount_or_none(data.get("amount_cents")),
            currency=currency if isinstance(currency, str) else None,
            metadata=metadata if isinstance(metadata, dict) else {},
        )

    async def get_payment(self, provider_payment_id: str) -> ProviderPaymentDetails | None:
        """The provider's own record of a payment; None when it has no such payment (404)."""
        data = await self._get_object("payments", provider_payment_id)
        if data is None:
            return None
        metadata, currency = data.get("metadata"), data.get("currency")
        return ProviderPaymentDetails(
            id=provider_payment_id,
            status=str(data.get("status", "")),
            amount_cents=amount_or_none(data.get("amount_cents")),
            currency=currency if isinstance(currency, str) else None,
            metadata=metadata if isinstance(metadata, dict) else {},
            amount_refunded_cents=amount_or_none(data.get("amount_refunded_cents")),
        )
