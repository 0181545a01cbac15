"""The customer emails: one short message per order event, as plain text and HTML."""

from __future__ import annotations

import html
from collections.abc import Iterable
from email.message import EmailMessage

_WHAT_HAPPENED = {
    "order.placed": ("is confirmed", "Your payment went through and your order is confirmed."),
    "order.cancelled": ("was cancelled", "Your order was cancelled{reason}. Any held items were released."),
    "order.rejected": ("could not be accepted", "We could not accept your order{reason}."),
    "order.refunded": ("was refunded", "Your payment for this order has been refunded."),
    "order.shipped": ("has shipped", "Your order is on its way."),
    "order.delivered": ("was delivered", "Your order was delivered. Enjoy!"),
}

_REASONS = {
    "out_of_stock": "items are out of stock",
    "unknown_item": "an item is not in our catalogue",
    "payment_failed": "the payment failed",
    "payment_timeout": "the payment did not arrive in time",
    "customer_cancelled": "you asked us to",
    "admin_cancelled": "the shop cancelled it",
}


def compose(*, order_id: str, reason: str | None, total_cents: int, currency: str,
            lines: Iterable[tuple[int, str]], email: str, name: str, event: str, sender: str) -> EmailMessage:
    """The email announcing ``event`` (e.g. ``order.placed``) for an order to its customer.

    Takes plain values, as one query reads them: the order's ``reason``, ``total_cents`` and
    ``currency``, its ``lines`` as (quantity, sku) pairs in SKU order, and the customer's ``email``
    and ``name``.
    """
    headline, body = _WHAT_HAPPENED[event]
    reason_text = f" because {_REASONS[reason]}" if reason in _REASONS else ""
    body = body.format(reason=reason_text)
    total = f"{total_cents / 100:.2f} {currency}"
    listed = [f"- {quantity} x {sku}" for quantity, sku in lines]

    message = EmailMessage()
    message["From"] = sender
    message["To"] = email
    message["Subject"] = f"Order {order_id} {headline}"
    # Stable per order and event: mail clients drop a duplicate that a crash could cause.
    message["Message-ID"] = f"<{order_id}.{event}@{sender.split('@')[-1]}>"
    message["X-Order-Id"] = order_id
    message["X-Order-Event"] = event
    message.set_content("\n".join([
        f"Hello {name},", "", body, "", f"Order {order_id}", *listed, f"Total: {total}", "",
    ]))
    items = "".join(f"<li>{html.escape(line)}</li>" for line in (l[2:] for l in listed))
    message.add_alternative(
        f"<p>Hello {html.escape(name)},</p><p>{html.escape(body)}</p>"
        f"<p>Order <strong>{html.escape(order_id)}</strong></p><ul>{items}</ul>"
        f"<p>Total: {html.escape(total)}</p>",
        subtype="html",
    )
    return message
