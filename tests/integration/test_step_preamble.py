"""What every order step does first: lock (or read) the order and stop when there is nothing to do.

An unknown order is logged as a warning and the step returns None; an order another step already
moved is logged as info and the step returns its status. A step therefore only asks the state
machine for legal moves; an illegal one is a bug, and it propagates with nothing left behind.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from actors.cancel import cancel_order
from actors.expire import expire_hold
from actors.pay import request_payment
from actors.reserve import reserve_stock
from models.inventory import release_holds
from models.order_moves import move_order
from models.state import IllegalTransition, OrderStatus
from tests.support.factories import available, load_order, make_account, make_order
from tests.support.scenarios import awaiting_payment


async def _cancel(runtime, order_id):
    return await cancel_order(runtime, order_id, "customer_cancelled")


STEPS = {"reserve": reserve_stock, "expire": expire_hold, "cancel": _cancel, "pay": request_payment}


def step_lines(logs: list[dict], step: str) -> list[tuple[str, str, dict]]:
    """The step's own log lines: (event, level, fields)."""
    return [
        (
            entry["event"],
            entry["log_level"],
            {k: v for k, v in entry.items() if k not in ("event", "log_level")},
        )
        for entry in logs
        if entry["event"].startswith(f"{step}.")
    ]


async def rejected_order(runtime, sessionmaker) -> str:
    """An order `reserve` rejected (unknown_item): no step has anything left to do with it."""
    account = await make_account(sessionmaker)
    order_id = await make_order(sessionmaker, account, {"NO-SUCH-SKU": 1})
    assert await reserve_stock(runtime, order_id) == OrderStatus.REJECTED
    return order_id


@pytest.mark.parametrize("step", sorted(STEPS))
async def test_a_step_for_an_unknown_order_warns_and_does_nothing(runtime, step):
    with capture_logs() as logs:
        assert await STEPS[step](runtime, "no-such-order") is None

    assert step_lines(logs, step) == [(f"{step}.unknown_order", "warning", {})]


@pytest.mark.parametrize(
    ("step", "event", "result", "fields"),
    [
        ("reserve", "reserve.already_done", "REJECTED", {"status": "REJECTED"}),
        ("expire", "expire.already_done", "REJECTED", {"status": "REJECTED"}),
        (
            "cancel",
            "cancel.not_applicable",
            "REJECTED",
            {"status": "REJECTED", "order_reason": "unknown_item"},
        ),
        ("pay", "pay.not_awaiting_payment", None, {"status": "REJECTED"}),
    ],
)
async def test_a_step_for_an_order_already_moved_on_says_so_and_does_nothing(
    runtime, sessionmaker, step, event, result, fields
):
    order_id = await rejected_order(runtime, sessionmaker)
    before = await load_order(sessionmaker, order_id)

    with capture_logs() as logs:
        assert await STEPS[step](runtime, order_id) == result

    assert step_lines(logs, step) == [(event, "info", fields)]
    after = await load_order(sessionmaker, order_id)
    assert (after.status, after.reason, len(after.history)) == (
        before.status,
        before.reason,
        len(before.history),
    )


async def test_an_illegal_move_in_a_step_raises_and_leaves_nothing_behind(runtime, sessionmaker):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)

    with pytest.raises(IllegalTransition):
        async with runtime.uow() as uow:
            order = await uow.lock_order(order_id)
            await release_holds(await uow.connection(), order)
            await move_order(uow, order, OrderStatus.DELIVERED)
            await uow.commit()

    order = await load_order(sessionmaker, order_id)
    assert order.status == OrderStatus.AWAITING_PAYMENT and {h.state for h in order.holds} == {"HELD"}
    assert await available(sessionmaker, sku) == 3
