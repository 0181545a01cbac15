"""Which orders may still get a new shipping address, and how a body that is no change is refused."""

from __future__ import annotations

import pytest

from gateway.http.bodies import decode
from gateway.http.problems import Problem
from gateway.orders.address_change import CHANGEABLE, refusal_reason
from gateway.orders.schemas import ShippingAddressChange
from models.state import OrderStatus


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (OrderStatus.PENDING, None),
        (OrderStatus.AWAITING_PAYMENT, None),
        (OrderStatus.PLACED, None),
        (OrderStatus.SHIPPED, "it has already been shipped"),
        (OrderStatus.DELIVERED, "it has already been delivered"),
        (OrderStatus.CANCELLED, "it was cancelled"),
        (OrderStatus.REJECTED, "it was rejected"),
    ],
)
def test_the_address_can_change_until_the_order_ships_or_ends(status, reason):
    assert refusal_reason(status.value) == reason


def test_every_status_is_decided_one_way_or_the_other():
    refused = {status for status in OrderStatus if refusal_reason(status.value) is not None}
    assert refused | CHANGEABLE == set(OrderStatus) and not refused & CHANGEABLE


@pytest.mark.parametrize("status", list(OrderStatus))
def test_an_archived_order_is_refused_whatever_its_status(status):
    assert refusal_reason(status.value, archived=True) == "it is archived"


def test_a_body_with_an_address_is_read():
    change = decode(
        b'{"shipping_address": {"line1": "2 Side St", "city": "Shelbyville"}}', ShippingAddressChange
    )
    assert change.shipping_address == {"line1": "2 Side St", "city": "Shelbyville"}


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"{}", "shipping_address: is required"),
        (
            b'{"shipping_address": null}',
            "shipping_address: must be an address object: an order's address can be changed, not removed",
        ),
        (b'{"shipping_address": "2 Side St"}', "shipping_address: must be a JSON object"),
        (b'{"shipping_address": {}, "reason": "moved"}', "reason: is not a known field"),
        (b'{"shipping_address": {"a": {"b": {"c": {"d": 1}}}}}', "shipping_address: "),
    ],
)
def test_a_body_that_is_no_change_is_refused_naming_the_field(raw, detail):
    with pytest.raises(Problem) as refused:
        decode(raw, ShippingAddressChange)

    assert refused.value.status == 422
    assert refused.value.detail.startswith(detail)
