"""How a step starts: take the order (or its payment) and stop when there is nothing to do.

An order step locks the order first (the row lock runs the steps of one order one after
another), then stops when the order is unknown, logged as the warning ``<step>.unknown_order``
(the message names an order that never existed, or one archived since), or when the order is
no longer in a status the step moves it from, logged as info ``<step>.already_done`` (or the
name the step gives it): another step, or an earlier delivery of the same message, got there
first. What the step does next happens under that lock, so it only asks for legal moves.

A payment step (`refund`, `void`) locks the order the same way and goes on only with a payment
of it in the status it acts on; anything else is logged as info ``<step>.not_applicable``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from models.order_record import OrderRecord, PaymentRecord
from models.repository import find_payment
from models.state import OrderStatus, PaymentStatus
from models.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class NothingToDo:
    """The step stops here; ``status`` is the order's, what the step returns (None: no such order)."""

    status: str | None


def order_to_move(
    order: OrderRecord | None,
    *,
    log: Any,
    step: str,
    movable_from: Collection[OrderStatus],
    skipped: str = "already_done",
    log_reason: bool = False,
) -> OrderRecord | NothingToDo:
    """``order`` when ``step`` has work to do on it (its status is in ``movable_from``), else why not.

    ``log`` is the step's logger; ``skipped`` names the info line of an order already moved on,
    which carries the order's status (and its reason with ``log_reason``).
    """
    if order is None:
        log.warning(f"{step}.unknown_order")
        return NothingToDo(None)
    if order.status not in movable_from:
        fields: dict[str, Any] = {"status": order.status}
        if log_reason:
            fields["order_reason"] = order.reason
        log.info(f"{step}.{skipped}", **fields)
        return NothingToDo(order.status)
    return order


async def lock_order_to_move(
    uow: UnitOfWork,
    order_id: str,
    *,
    log: Any,
    step: str,
    movable_from: Collection[OrderStatus],
    skipped: str = "already_done",
    log_reason: bool = False,
) -> OrderRecord | NothingToDo:
    """Lock the order in ``uow`` and check it as :func:`order_to_move` does."""
    return order_to_move(
        await uow.lock_order(order_id),
        log=log,
        step=step,
        movable_from=movable_from,
        skipped=skipped,
        log_reason=log_reason,
    )


async def lock_payment_to_act_on(
    uow: UnitOfWork,
    order_id: str,
    payment_id: str,
    *,
    log: Any,
    step: str,
    status: PaymentStatus,
    ready: Callable[[PaymentRecord], bool],
) -> PaymentRecord | None:
    """The order's payment ``payment_id``, the order locked in ``uow``, when it is in ``status``
    and ``ready`` for ``step``; otherwise None, logged as ``<step>.not_applicable``."""
    order = await uow.lock_order(order_id)
    payment = find_payment(order, payment_id=payment_id) if order else None
    if payment is None or payment.status != status or not ready(payment):
        log.info(
            f"{step}.not_applicable",
            payment_id=payment_id,
            payment_status=payment.status if payment else None,
        )
        return None
    return payment
