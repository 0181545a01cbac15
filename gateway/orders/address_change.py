"""Changing where an order goes (``PATCH /orders/{id}``) until it leaves the warehouse.

The gateway makes the change itself, under the order row's lock and in one transaction: the new
``shipping_address``, ``updated_at``, a history entry noting ``address_changed`` (it keeps the
status) and the ``order.updated`` event, whose email and domain event join the outbox at commit.
A ``ship`` racing the request is seen either before (409) or after (the order ships to the new
address). Two changes racing each other take turns on the lock: both are recorded, the later
one's address stays.

Each change is its own occurrence of ``order.updated`` (a fresh id), so each gets its own email.
A request naming the address the order already has changes nothing, records nothing and sends
nothing: a client retrying a PATCH whose answer it lost must not make a second email.
"""

from __future__ import annotations

from typing import Any

import structlog

from gateway.http.auth import Caller
from gateway.http.order_access import FoundOrder, find_order
from gateway.http.problems import ADDRESS_NOT_CHANGEABLE, Problem
from models.events import UPDATED_EVENT
from models.state import OrderStatus, record_note
from models.tables import new_id
from models.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

ADDRESS_CHANGED_NOTE = "address_changed"

# Listed rather than inferred, so a status added later is refused until someone decides otherwise.
CHANGEABLE = frozenset({OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT, OrderStatus.PLACED})
_TOO_LATE = {
    OrderStatus.SHIPPED: "it has already been shipped",
    OrderStatus.DELIVERED: "it has already been delivered",
    OrderStatus.CANCELLED: "it was cancelled",
    OrderStatus.REJECTED: "it was rejected",
}


def refusal_reason(status: str, *, archived: bool = False) -> str | None:
    """Why an order in ``status`` can no longer get a new address; None when it still can."""
    if archived:
        # Only final orders are archived; their archived copy is detached and never written back.
        return "it is archived"
    try:
        known = OrderStatus(status)
    except ValueError:
        return f"it is {status}"
    if known in CHANGEABLE:
        return None
    return _TOO_LATE.get(known, f"it is {known.value}")


async def change_address(
    units_of_work: UnitOfWorkFactory, order_id: str, caller: Caller, address: dict[str, Any]
) -> FoundOrder:
    """Give an order ``caller`` may see a new shipping address; returns the order as changed.

    Raises a 404 :class:`Problem` for an order the caller cannot see and a 409 one for an order
    that has shipped, ended or been archived.
    """
    async with units_of_work() as uow:
        found = await find_order(uow.session, order_id, caller, lock=True)
        order = found.order
        reason = refusal_reason(order.status, archived=found.archived)
        if reason is not None:
            raise Problem(
                ADDRESS_NOT_CHANGEABLE,
                f"the shipping address of order {order.id} can no longer be changed: {reason}",
                order_status=order.status,
            )
        changed = order.shipping_address != address
        if changed:
            order.shipping_address = address
            record_note(order, ADDRESS_CHANGED_NOTE)
            order.updated_at = order.history[-1].at
            # The email and the event are built at commit from this order, showing the new address.
            uow.announce_event(order, UPDATED_EVENT, occurrence=new_id())
        # Committing also when nothing changed keeps the loaded order readable after the block
        # (a rollback would expire it) and releases the lock just the same.
        await uow.commit()
    log.info("order.address_change_requested", status=order.status, changed=changed)
    return found
