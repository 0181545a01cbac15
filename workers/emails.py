"""The customer emails: one short message per order event, as plain text and HTML."""

from __future__ import annotations

import html
from email.message import EmailMessage

from models.tables import Account, Order

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


def compose(order: Order, account: Account, event: str, sender: str) -> EmailMessage:
    """The email announcing ``event`` (e.g. ``order.placed``) for ``order`` to its customer."""
    headline, body = _WHAT_HAPPENED[event]
    reason = f" because {_REASONS[order.reason]}" if order.reason in _REASONS else ""
    body = body.format(reason=reason)
    total = f"{order.total_cents / 100:.2f} {order.currency}"
    lines = [f"- {line.quantity} x {line.sku}" for line in order.lines]

    message = EmailMessage()
    message["From"] = sender
    message["To"] = account.email
    message["Subject"] = f"Order {order.id} {headline}"
    # Stable per order and event: mail clients drop a duplicate that a crash could cause.
    message["Message-ID"] = f"<{order.id}.{event}@{sender.split('@')[-1]}>"
    message["X-Order-Id"] = order.id
    message["X-Order-Event"] = event
    message.set_content("\n".join([
        f"Hello {account.name},", "", body, "", f"Order {order.id}", *lines, f"Total: {total}", "",
    ]))
    items = "".join(f"<li>{html.escape(line)}</li>" for line in (l[2:] for l in lines))
    message.add_alternative(
        f"<p>Hello {html.escape(account.name)},</p><p>{html.escape(body)}</p>"
        f"<p>Order <strong>{html.escape(order.id)}</strong></p><ul>{items}</ul>"
        f"<p>Total: {html.escape(total)}</p>",
        subtype="html",
    )
    return message
