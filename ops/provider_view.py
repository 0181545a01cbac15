"""What the payment provider itself records about an order's payments and refunds.

``orders-admin order ID --provider`` puts it beside our records, so an operator can see at once
whether the provider agrees (a payment captured there but failed here, a refund we wait for that
it already made) without opening the provider's dashboard.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from providers.payments.provider import (
    PaymentProvider,
    ProviderError,
    ProviderPaymentDetails,
    ProviderRefundDetails,
    ProviderRefused,
)


async def _asked(
    question: Awaitable[ProviderPaymentDetails | ProviderRefundDetails | None],
) -> dict[str, Any]:
    try:
        answer = await question
    except (ProviderError, ProviderRefused) as error:
        return {"status": None, "amount_cents": None, "currency": None, "note": f"not answered: {error}"}
    if answer is None:
        return {"status": None, "amount_cents": None, "currency": None, "note": "the provider has none"}
    return {
        "status": answer.status,
        "amount_cents": answer.amount_cents,
        "currency": answer.currency,
        "note": None,
    }


async def provider_records(provider: PaymentProvider, document: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per payment attempt and refund of the order that the provider knows by id (see
    ``ops.order_info.order_document``), with its status and amount there beside ours."""
    asked = [
        ("payment", document["payments"], "provider_payment_id", provider.get_payment),
        ("refund", document["refunds"], "provider_refund_id", provider.get_refund),
    ]
    rows = []
    for kind, records, id_field, read in asked:
        for record in records:
            if record[id_field]:
                found = await _asked(read(record[id_field]))
                rows.append(
                    {
                        "kind": kind,
                        "id": record["id"],
                        "provider_id": record[id_field],
                        "ours": record["status"],
                        **found,
                    }
                )
    return rows
