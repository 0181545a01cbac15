"""The customer email, written directly as SMTP carries it, says what the EmailMessage version
said: the same envelope, headers and both bodies once parsed by the email package, the same
Message-ID to the byte. Expected texts were recorded from the EmailMessage version (the MIME
boundary was random); :func:`reference` is that version, compared against on generated values.
"""

from __future__ import annotations

import html
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers import emails
from providers.emails import compose

CASES = [
    (
        dict(
            order_id="a" * 32,
            reason=None,
            total_cents=2000,
            currency="USD",
            lines=[(2, "SKU-1"), (1, "sku-0")],
            email="ada@example.com",
            name="Ada <Lovelace> & Co",
            event="order.placed",
            sender="Shop <orders@shop.example>",
        ),
        (
            "From: Shop <orders@shop.example>\n"
            "To: ada@example.com\n"
            "Subject: Order aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is confirmed\n"
            "Message-ID: <aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.order.placed@shop.example>\n"
            "X-Order-Id: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
            "X-Order-Event: order.placed\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/alternative;\n"
            ' boundary="BOUNDARY"\n'
            "\n"
            "--BOUNDARY\n"
            'Content-Type: text/plain; charset="utf-8"\n'
            "Content-Transfer-Encoding: 7bit\n"
            "\n"
            "Hello Ada <Lovelace> & Co,\n"
            "\n"
            "Your payment went through and your order is confirmed.\n"
            "\n"
            "Order aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
            "- 2 x SKU-1\n"
            "- 1 x sku-0\n"
            "Total: 20.00 USD\n"
            "\n"
            "--BOUNDARY\n"
            'Content-Type: text/html; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n"
            "MIME-Version: 1.0\n"
            "\n"
            "<p>Hello Ada &lt;Lovelace&gt; &amp; Co,</p><p>Your payment went through and y=\n"
            "our order is confirmed.</p><p>Order <strong>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa<=\n"
            "/strong></p><ul><li>2 x SKU-1</li><li>1 x sku-0</li></ul><p>Total: 20.00 USD<=\n"
            "/p>\n"
            "\n"
            "--BOUNDARY--\n"
        ),
    ),
    (
        dict(
            order_id="b" * 32,
            reason="out_of_stock",
            total_cents=5,
            currency="EUR",
            lines=[],
            email="zoë@example.com",
            name="Zoë",
            event="order.rejected",
            sender="orders@shop.example",
        ),
        (
            "From: orders@shop.example\n"
            "To: =?utf-8?q?zo=C3=AB?=@example.com\n"
            "Subject: Order bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb could not be accepted\n"
            "Message-ID: <bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.order.rejected@shop.example>\n"
            "X-Order-Id: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
            "X-Order-Event: order.rejected\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/alternative;\n"
            ' boundary="BOUNDARY"\n'
            "\n"
            "--BOUNDARY\n"
            'Content-Type: text/plain; charset="utf-8"\n'
            "Content-Transfer-Encoding: base64\n"
            "\n"
            "SGVsbG8gWm/DqywKCldlIGNvdWxkIG5vdCBhY2NlcHQgeW91ciBvcmRlciBiZWNhdXNlIGl0ZW1z\n"
            "IGFyZSBvdXQgb2Ygc3RvY2suCgpPcmRlciBiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi\n"
            "YgpUb3RhbDogMC4wNSBFVVIK\n"
            "\n"
            "--BOUNDARY\n"
            'Content-Type: text/html; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n"
            "MIME-Version: 1.0\n"
            "\n"
            "<p>Hello Zo=C3=AB,</p><p>We could not accept your order because items are out=\n"
            " of stock.</p><p>Order <strong>bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb</strong></p><=\n"
            "ul></ul><p>Total: 0.05 EUR</p>\n"
            "\n"
            "--BOUNDARY--\n"
        ),
    ),
    (
        dict(
            order_id="c" * 32,
            reason="weird",
            total_cents=123456,
            currency="GBP",
            lines=[(3, "x")],
            email="b@example.com",
            name="B",
            event="order.cancelled",
            sender="orders@shop.example",
        ),
        (
            "From: orders@shop.example\n"
            "To: b@example.com\n"
            "Subject: Order cccccccccccccccccccccccccccccccc was cancelled\n"
            "Message-ID: <cccccccccccccccccccccccccccccccc.order.cancelled@shop.example>\n"
            "X-Order-Id: cccccccccccccccccccccccccccccccc\n"
            "X-Order-Event: order.cancelled\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/alternative;\n"
            ' boundary="BOUNDARY"\n'
            "\n"
            "--BOUNDARY\n"
            'Content-Type: text/plain; charset="utf-8"\n'
            "Content-Transfer-Encoding: 7bit\n"
            "\n"
            "Hello B,\n"
            "\n"
            "Your order was cancelled. Any held items were released.\n"
            "\n"
            "Order cccccccccccccccccccccccccccccccc\n"
            "- 3 x x\n"
            "Total: 1234.56 GBP\n"
            "\n"
            "--BOUNDARY\n"
            'Content-Type: text/html; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n"
            "MIME-Version: 1.0\n"
            "\n"
            "<p>Hello B,</p><p>Your order was cancelled. Any held items were released.</p>=\n"
            "<p>Order <strong>cccccccccccccccccccccccccccccccc</strong></p><ul><li>3 x x</=\n"
            "li></ul><p>Total: 1234.56 GBP</p>\n"
            "\n"
            "--BOUNDARY--\n"
        ),
    ),
]


def parsed(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)


def summary(message: EmailMessage) -> dict:
    """What a reader of the message gets: headers, the multipart shape, both bodies."""
    plain, markup = message.get_body(("plain",)), message.get_body(("html",))
    return {
        **{
            name: str(message[name])
            for name in ("From", "To", "Subject", "Message-ID", "X-Order-Id", "X-Order-Event", "MIME-Version")
        },
        "type": message.get_content_type(),
        "parts": [(part.get_content_type(), part.get_content_charset()) for part in message.iter_parts()],
        # SMTP carries CRLF; the EmailMessage version's text said LF.
        "plain": plain.get_content().replace("\r\n", "\n"),
        "html": markup.get_content().replace("\r\n", "\n"),
    }


def check_wire_form(data: bytes) -> None:
    """CRLF line endings only, no line over 998 octets, 7-bit unless an address needs SMTPUTF8."""
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    _, _, body = data.partition(b"\r\n\r\n")
    assert body.isascii()


@pytest.mark.parametrize(
    ("values", "expected"), CASES, ids=["placed", "rejected-non-ascii-no-lines", "unknown-reason"]
)
def test_the_email_says_what_it_said(values, expected):
    email = compose(**values)

    assert summary(parsed(email.data)) == summary(message_from_string(expected, policy=policy.default))
    check_wire_form(email.data)


@pytest.mark.parametrize(
    ("values", "expected"), CASES, ids=["placed", "rejected-non-ascii-no-lines", "unknown-reason"]
)
def test_the_message_id_header_is_written_as_it_was(values, expected):
    [line] = [line for line in expected.splitlines() if line.startswith("Message-ID:")]
    email = compose(**values)

    assert f"\r\n{line}\r\n".encode() in email.data
    assert email.message_id == line.removeprefix("Message-ID: ")


def test_the_envelope_is_the_from_and_to_addresses():
    placed, rejected, _ = (compose(**values) for values, _ in CASES)

    assert (placed.sender, placed.recipients, placed.smtputf8) == (
        "orders@shop.example",
        ("ada@example.com",),
        False,
    )
    # A non-ASCII address needs SMTPUTF8 and is written as UTF-8, as the email package sent it.
    assert (rejected.recipients, rejected.smtputf8) == (("zoë@example.com",), True)
    assert "\r\nTo: zoë@example.com\r\n".encode() in rejected.data


def test_message_id_is_stable_per_order_and_event():
    values = dict(CASES[0][0])
    first, second = compose(**values), compose(**values)

    assert first.message_id == second.message_id == f"<{'a' * 32}.order.placed@shop.example>"
    assert parsed(first.data)["Message-ID"] == first.message_id
    assert compose(**{**values, "event": "order.shipped"}).message_id != first.message_id


@pytest.mark.parametrize(
    "sender",
    [
        "Shop <orders@shop.example>",
        "orders@shop.example",
        '"Shop, Inc." <orders@shop.example>',
        "Shöp <orders@shop.example>",
        "orders@shop.example (Shop)",
        "Shop <orders@[127.0.0.1]>",
    ],
)
def test_senders_give_the_message_id_and_from_they_gave(sender):
    values = {**CASES[0][0], "sender": sender}
    email, expected = compose(**values), reference(**values)

    assert email.message_id == str(expected["Message-ID"])
    assert parsed(email.data)["Message-ID"] == email.message_id
    # (The email package folded the odd "<...> (Shop)" Message-ID onto a line of its own.)
    assert {**summary(parsed(email.data)), "Message-ID": None} == {
        **summary(parsed(expected.as_bytes(policy=policy.SMTP))),
        "Message-ID": None,
    }


def test_long_or_non_ascii_text_is_quoted_printable_and_reads_back():
    values = {**CASES[2][0], "name": "Ærøskøbing " + "x" * 120, "lines": [(1, "S" * 200)]}
    email = compose(**values)

    assert b"Content-Transfer-Encoding: 7bit" not in email.data
    assert summary(parsed(email.data)) == summary(parsed(reference(**values).as_bytes(policy=policy.SMTP)))
    check_wire_form(email.data)


def test_a_boundary_found_in_the_text_is_not_used(monkeypatch):
    taken = "=_" + "0" * 24
    draws = iter([0, 0, 1])
    monkeypatch.setattr(emails.random, "getrandbits", lambda bits: next(draws))

    email = compose(**{**CASES[2][0], "name": f"--{taken}"})

    assert f'boundary="=_{1:024x}"'.encode() in email.data
    assert summary(parsed(email.data))["plain"].startswith(f"Hello --{taken},")


@pytest.mark.parametrize("field", ["email", "sender", "order_id"])
def test_a_header_value_with_a_line_break_is_refused(field):
    values = {**CASES[0][0], field: CASES[0][0][field] + "\r\nBcc: x@example.com"}

    with pytest.raises(ValueError):
        compose(**values)


# -- against the EmailMessage version, on generated values ------------------------------------


def reference(*, order_id, reason, total_cents, currency, lines, email, name, event, sender) -> EmailMessage:
    """The EmailMessage version of compose, as it was."""
    headline, body = emails._WHAT_HAPPENED[event]
    reason_text = f" because {emails._REASONS[reason]}" if reason in emails._REASONS else ""
    body = body.format(reason=reason_text)
    total = f"{total_cents / 100:.2f} {currency}"
    listed = [f"- {quantity} x {sku}" for quantity, sku in lines]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email
    message["Subject"] = f"Order {order_id} {headline}"
    message["Message-ID"] = f"<{order_id}.{event}@{sender.split('@')[-1]}>"
    message["X-Order-Id"] = order_id
    message["X-Order-Event"] = event
    message.set_content(
        "\n".join(
            [
                f"Hello {name},",
                "",
                body,
                "",
                f"Order {order_id}",
                *listed,
                f"Total: {total}",
                "",
            ]
        )
    )
    items = "".join(f"<li>{html.escape(line)}</li>" for line in (entry[2:] for entry in listed))
    message.add_alternative(
        f"<p>Hello {html.escape(name)},</p><p>{html.escape(body)}</p>"
        f"<p>Order <strong>{html.escape(order_id)}</strong></p><ul>{items}</ul>"
        f"<p>Total: {html.escape(total)}</p>",
        subtype="html",
    )
    return message


# Names and SKUs as customers and shops type them: any printable text, accents, markup, long.
_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=120)
_local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True).filter(
    lambda s: ".." not in s and not s.endswith(".")
)
_addresses = st.one_of(
    st.builds("{}@{}.example".format, _local, st.from_regex(r"[a-z]{1,10}", fullmatch=True)),
    st.builds("{}ë@exämple.com".format, _local),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order_id=st.uuids().map(lambda u: u.hex),
    reason=st.sampled_from([None, "out_of_stock", "payment_failed", "something_else"]),
    total_cents=st.integers(0, 10**9),
    currency=st.sampled_from(["USD", "EUR", "GBP"]),
    lines=st.lists(st.tuples(st.integers(1, 1000), _text), max_size=6),
    email=_addresses,
    name=_text,
    event=st.sampled_from(sorted(emails._WHAT_HAPPENED)),
    sender=st.sampled_from(
        ["Shop <orders@shop.example>", "orders@shop.example", "Shöp <orders@shop.example>"]
    ),
)
def test_any_email_reads_as_the_email_message_version(**values):
    email = compose(**values)
    expected = reference(**values)
    utf8 = not "".join(email.recipients).isascii()

    # What the EmailMessage version sent: flattened for SMTP by aiosmtplib (as UTF-8 when needed).
    assert summary(parsed(email.data)) == summary(
        parsed(expected.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP))
    )
    assert email.message_id == str(expected["Message-ID"])
    assert email.recipients == tuple(a.addr_spec for a in expected["To"].addresses)
    assert email.sender == expected["From"].addresses[0].addr_spec
    if not utf8:
        check_wire_form(email.data)
