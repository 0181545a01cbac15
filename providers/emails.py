"""The customer emails: one short message per order event, as plain text and HTML.

:func:`compose` writes the message as SMTP carries it (CRLF line endings, 7-bit headers unless
an address needs SMTPUTF8) together with its envelope, so sending it parses nothing again. Every
message has the same shape, so it is written directly rather than built as an
:class:`~email.message.EmailMessage` tree, whose header parsing, content manager and generator
took milliseconds of CPU per email. The encodings are the standard library's (``binascii``
quoted-printable, :mod:`email.policy` folding for any header that is not short plain ASCII), and
the bytes parse back with :mod:`email` to the same headers and bodies as the
:class:`~email.message.EmailMessage` version (tests/unit/test_email_compose.py checks it).
"""

from __future__ import annotations

import html
import random
import re
from binascii import b2a_qp
from collections.abc import Iterable
from email import policy
from email.policy import EmailPolicy
from functools import lru_cache
from typing import Any, NamedTuple

_WHAT_HAPPENED = {
    "order.placed": ("is confirmed", "Your payment went through and your order is confirmed."),
    "order.cancelled": ("was cancelled", "Your order was cancelled{reason}. Any held items were released."),
    "order.rejected": ("could not be accepted", "We could not accept your order{reason}."),
    "order.refunded": ("was refunded", "We have refunded money for this order to your payment method."),
    "order.updated": (
        "was updated",
        "Your order was updated: its shipping address or its payment method changed.",
    ),
    "order.return_requested": (
        "has a return on its way",
        "We have your return request. Please send the items back; we refund them once they arrive.",
    ),
    "order.return_received": ("is back with us", "Your returned items arrived; their refund is on its way."),
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

#: RFC 5322's recommended line length, which the email package folds headers and 7-bit bodies to.
_MAX_LINE = 78
#: An address written as is in a header and on the envelope: an ASCII dot-atom local part and a
#: domain. Anything else is parsed by the email package, as before.
#: Characters that the email package keeps as they are on the left of a Message-ID's ``@``.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


class Email(NamedTuple):
    """A composed email: its envelope and the message as sent (CRLF line endings)."""

    #: MAIL FROM: the address of the From header.
    sender: str
    #: RCPT TO: the address(es) of the To header.
    recipients: tuple[str, ...]
    #: The Message-ID header's value.
    message_id: str
    data: bytes
    #: An envelope address is not ASCII: the server must offer SMTPUTF8 (and the headers are UTF-8).
    smtputf8: bool


def compose(
    *,
    order_id: str,
    reason: str | None,
    total_cents: int,
    currency: str,
    lines: Iterable[tuple[int, str]],
    email: str,
    name: str,
    event: str,
    sender: str,
    occurrence: str | None = None,
) -> Email:
    """The email announcing ``event`` (e.g. ``order.placed``) for an order to its customer.

    Takes plain values, as one query reads them: the order's ``reason``, ``total_cents`` and
    ``currency``, its ``lines`` as (quantity, sku) pairs in SKU order, and the customer's ``email``
    and ``name``; ``sender`` is the From header (``Shop <orders@shop.example>``). ``occurrence``
    names one of several events of a type an order may have (a refund's id, an address change's).
    """
    headline, body = _WHAT_HAPPENED[event]
    reason_text = f" because {_REASONS[reason]}" if reason in _REASONS else ""
    body = body.format(reason=reason_text)
    total = f"{total_cents / 100:.2f} {currency}"
    listed = [f"- {quantity} x {sku}" for quantity, sku in lines]

    text = "\n".join([f"Hello {name},", "", body, "", f"Order {order_id}", *listed, f"Total: {total}", ""])
    items = "".join(f"<li>{html.escape(line)}</li>" for line in (entry[2:] for entry in listed))
    markup = (
        f"<p>Hello {html.escape(name)},</p><p>{html.escape(body)}</p>"
        f"<p>Order <strong>{html.escape(order_id)}</strong></p><ul>{items}</ul>"
        f"<p>Total: {html.escape(total)}</p>"
    )
    text_encoding, text_body = _text_part(text)
    html_body = _quoted_printable(markup)

    from_address, from_header = _sender(sender)
    if _PLAIN_ADDRESS.fullmatch(email):
        recipients = (email,)
        to_header = f"To: {email}\r\n"
    else:  # unusual or not ASCII: the email package reads it, as it read every header before
        to = policy.SMTP.header_factory("To", _checked(email))
        recipients = tuple(address.addr_spec for address in to.addresses)
        # A non-ASCII address is written as UTF-8 (RFC 6532), as the email package sends it.
        to_header = to.fold(policy=policy.SMTP if "".join(recipients).isascii() else policy.SMTPUTF8)
    # Each occurrence is its own email: with one Message-ID, clients would drop all but the first.
    message_id = _message_id(order_id, f"{event}.{occurrence}" if occurrence else event, sender)

    boundary = _boundary(text_body)
    head = "".join(
        [
            from_header,
            to_header,
            _header("Subject", f"Order {order_id} {headline}"),
            # Written as is, as the email package writes it, unless it is one word too long for
            # the line (an event occurrence's): that it moves whole to a line of its own.
            # Clients compare it as written.
            f"Message-ID: {message_id}\r\n"
            if message_id.isascii()
            and (" " in message_id or len(message_id) <= _MAX_LINE - len("Message-ID: "))
            else _fold("Message-ID", message_id),
            _header("X-Order-Id", order_id),
            _header("X-Order-Event", event),
            "MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n',
            "\r\n",
            f"--{boundary}\r\n",
            'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: '
            f"{text_encoding}\r\n\r\n",
        ]
    )
    between = (
        f"\r\n--{boundary}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    )
    data = b"".join(
        [
            head.encode(),
            text_body,
            between.encode("ascii"),
            html_body,
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )
    smtputf8 = not (from_address + "".join(recipients)).isascii()
    return Email(from_address, recipients, message_id, data, smtputf8)


def _message_id(order_id: str, event: str, sender: str) -> str:
    """``<order_id.event@domain>``: stable per order and event, so mail clients drop a duplicate
    that a crash could cause (the chaos run relies on it too).

    Exactly the value the email package made of ``<order_id.event@`` + the sender after its last
    ``@`` + ``>`` (for ``Shop <orders@shop.example>``, ``<...@shop.example>``): the part after
    ``@`` is worked out by the email package once per sender.
    """
    right = _message_id_right(sender)
    if right is not None and _ATEXT.fullmatch(order_id) and _ATEXT.fullmatch(event):
        return f"<{order_id}.{event}@{right}"
    raw = f"<{order_id}.{event}@{sender.split('@')[-1]}>"
    return str(policy.default.header_factory("Message-ID", _checked(raw)))


@lru_cache(maxsize=8)
def _message_id_right(sender: str) -> str | None:
    value = str(policy.default.header_factory("Message-ID", _checked(f"<x.y@{sender.split('@')[-1]}>")))
    return (
        value[len("<x.y@") :]
        if value.startswith("<x.y@") and "\r" not in value and "\n" not in value
        else None
    )


def _checked(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    return value


def _header(name: str, value: str) -> str:
    """``Name: value`` and CRLF: as is when short plain ASCII, else folded by the email package."""
    if value.isascii() and len(name) + 2 + len(value) <= _MAX_LINE and "=?" not in value:
        return f"{name}: {_checked(value)}\r\n"
    return _fold(name, value)


def _fold(name: str, value: str, header_policy: EmailPolicy[Any] = policy.SMTP) -> str:
    """The header as the email package writes it (RFC 2047 encoded words where not ASCII)."""
    return header_policy.header_factory(name, _checked(value)).fold(policy=header_policy)


@lru_cache(maxsize=8)
def _sender(sender: str) -> tuple[str, str]:
    """(the envelope address, the From header) for a From value; the same for every email."""
    header = policy.SMTP.header_factory("From", _checked(sender))
    addresses = header.addresses
    if not addresses:
        raise ValueError(f"No address in the sender {sender!r}")
    address = addresses[0].addr_spec
    # A non-ASCII address is written as UTF-8 (RFC 6532), as the email package sends it.
    return address, _header("From", sender) if address.isascii() else _fold("From", sender, policy.SMTPUTF8)


def _canonical(text: str) -> bytes:
    """UTF-8 with CRLF line breaks (the email package's line breaks: CR, LF or CRLF)."""
    return b"\r\n".join(text.encode().splitlines()) + b"\r\n"


def _text_part(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, body): as is when ASCII with short lines, else quoted-printable."""
    data = _canonical(text)
    if data.isascii() and max(map(len, data.split(b"\r\n"))) <= _MAX_LINE:
        return "7bit", data
    return "quoted-printable", b2a_qp(data, istext=True)


def _quoted_printable(text: str) -> bytes:
    return b2a_qp(_canonical(text), istext=True)


def _boundary(text_body: bytes) -> str:
    """A random MIME boundary not found in the 7-bit text (nor in quoted-printable: ``=_``)."""
    while True:
        boundary = f"=_{random.getrandbits(96):024x}"
        if boundary.encode() not in text_body:
            return boundary
