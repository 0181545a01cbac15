"""The customer email, composed from plain values, is byte for byte what it was when composed from
ORM objects (expected texts recorded from that version); only the MIME boundary is random."""

from __future__ import annotations

import pytest

from workers.emails import compose

CASES = [
    (dict(order_id="a" * 32, reason=None, total_cents=2000, currency="USD", lines=[(2, "SKU-1"), (1, "sku-0")],
          email="ada@example.com", name="Ada <Lovelace> & Co", event="order.placed",
          sender="Shop <orders@shop.example>"),
     (
        'From: Shop <orders@shop.example>\n'
        'To: ada@example.com\n'
        'Subject: Order aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is confirmed\n'
        'Message-ID: <aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.order.placed@shop.example>\n'
        'X-Order-Id: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n'
        'X-Order-Event: order.placed\n'
        'MIME-Version: 1.0\n'
        'Content-Type: multipart/alternative;\n'
        ' boundary="BOUNDARY"\n'
        '\n'
        '--BOUNDARY\n'
        'Content-Type: text/plain; charset="utf-8"\n'
        'Content-Transfer-Encoding: 7bit\n'
        '\n'
        'Hello Ada <Lovelace> & Co,\n'
        '\n'
        'Your payment went through and your order is confirmed.\n'
        '\n'
        'Order aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n'
        '- 2 x SKU-1\n'
        '- 1 x sku-0\n'
        'Total: 20.00 USD\n'
        '\n'
        '--BOUNDARY\n'
        'Content-Type: text/html; charset="utf-8"\n'
        'Content-Transfer-Encoding: quoted-printable\n'
        'MIME-Version: 1.0\n'
        '\n'
        '<p>Hello Ada &lt;Lovelace&gt; &amp; Co,</p><p>Your payment went through and y=\n'
        'our order is confirmed.</p><p>Order <strong>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa<=\n'
        '/strong></p><ul><li>2 x SKU-1</li><li>1 x sku-0</li></ul><p>Total: 20.00 USD<=\n'
        '/p>\n'
        '\n'
        '--BOUNDARY--\n'
     )),
    (dict(order_id="b" * 32, reason="out_of_stock", total_cents=5, currency="EUR", lines=[],
          email="zoë@example.com", name="Zoë", event="order.rejected", sender="orders@shop.example"),
     (
        'From: orders@shop.example\n'
        'To: =?utf-8?q?zo=C3=AB?=@example.com\n'
        'Subject: Order bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb could not be accepted\n'
        'Message-ID: <bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.order.rejected@shop.example>\n'
        'X-Order-Id: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n'
        'X-Order-Event: order.rejected\n'
        'MIME-Version: 1.0\n'
        'Content-Type: multipart/alternative;\n'
        ' boundary="BOUNDARY"\n'
        '\n'
        '--BOUNDARY\n'
        'Content-Type: text/plain; charset="utf-8"\n'
        'Content-Transfer-Encoding: base64\n'
        '\n'
        'SGVsbG8gWm/DqywKCldlIGNvdWxkIG5vdCBhY2NlcHQgeW91ciBvcmRlciBiZWNhdXNlIGl0ZW1z\n'
        'IGFyZSBvdXQgb2Ygc3RvY2suCgpPcmRlciBiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi\n'
        'YgpUb3RhbDogMC4wNSBFVVIK\n'
        '\n'
        '--BOUNDARY\n'
        'Content-Type: text/html; charset="utf-8"\n'
        'Content-Transfer-Encoding: quoted-printable\n'
        'MIME-Version: 1.0\n'
        '\n'
        '<p>Hello Zo=C3=AB,</p><p>We could not accept your order because items are out=\n'
        ' of stock.</p><p>Order <strong>bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb</strong></p><=\n'
        'ul></ul><p>Total: 0.05 EUR</p>\n'
        '\n'
        '--BOUNDARY--\n'
     )),
    (dict(order_id="c" * 32, reason="weird", total_cents=123456, currency="GBP", lines=[(3, "x")],
          email="b@example.com", name="B", event="order.cancelled", sender="orders@shop.example"),
     (
        'From: orders@shop.example\n'
        'To: b@example.com\n'
        'Subject: Order cccccccccccccccccccccccccccccccc was cancelled\n'
        'Message-ID: <cccccccccccccccccccccccccccccccc.order.cancelled@shop.example>\n'
        'X-Order-Id: cccccccccccccccccccccccccccccccc\n'
        'X-Order-Event: order.cancelled\n'
        'MIME-Version: 1.0\n'
        'Content-Type: multipart/alternative;\n'
        ' boundary="BOUNDARY"\n'
        '\n'
        '--BOUNDARY\n'
        'Content-Type: text/plain; charset="utf-8"\n'
        'Content-Transfer-Encoding: 7bit\n'
        '\n'
        'Hello B,\n'
        '\n'
        'Your order was cancelled. Any held items were released.\n'
        '\n'
        'Order cccccccccccccccccccccccccccccccc\n'
        '- 3 x x\n'
        'Total: 1234.56 GBP\n'
        '\n'
        '--BOUNDARY\n'
        'Content-Type: text/html; charset="utf-8"\n'
        'Content-Transfer-Encoding: quoted-printable\n'
        'MIME-Version: 1.0\n'
        '\n'
        '<p>Hello B,</p><p>Your order was cancelled. Any held items were released.</p>=\n'
        '<p>Order <strong>cccccccccccccccccccccccccccccccc</strong></p><ul><li>3 x x</=\n'
        'li></ul><p>Total: 1234.56 GBP</p>\n'
        '\n'
        '--BOUNDARY--\n'
     )),
]


@pytest.mark.parametrize(("values", "expected"), CASES, ids=["placed", "rejected-non-ascii-no-lines", "unknown-reason"])
def test_the_email_is_unchanged(values, expected):
    message = compose(**values)

    assert message.as_string().replace(message.get_boundary(), "BOUNDARY") == expected


def test_message_id_is_stable_per_order_and_event():
    values = dict(CASES[0][0])
    first, second = compose(**values), compose(**values)

    assert first["Message-ID"] == second["Message-ID"] == f"<{'a' * 32}.order.placed@shop.example>"
    assert compose(**{**values, "event": "order.shipped"})["Message-ID"] != first["Message-ID"]
