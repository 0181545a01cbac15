"""Which committed changes other parties hear about: customer emails and domain events.

Every move of an order announces itself to its unit of work (:meth:`UnitOfWork.announce`), which
calls :meth:`EventEmitter.emit` just before committing: every order that moved into a status
listed here (or whose payment was refunded) gets, in the same transaction, a `notify` message
and a domain event in the outbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.clock import isoformat, utcnow
from models.state import OrderStatus
from models.tables import Order, new_id
from models.views import order_json

if TYPE_CHECKING:
    from models.unit_of_work import Announcement, UnitOfWork

ORDER_EVENTS = {
    OrderStatus.PLACED: "order.placed",
    OrderStatus.CANCELLED: "order.cancelled",
    OrderStatus.REJECTED: "order.rejected",
    OrderStatus.SHIPPED: "order.shipped",
    OrderStatus.DELIVERED: "order.delivered",
}
REFUNDED_EVENT = "order.refunded"
UPDATED_EVENT = "order.updated"
RETURN_REQUESTED_EVENT = "order.return_requested"
RETURN_RECEIVED_EVENT = "order.return_received"


def event_body(event_type: str, order: Order) -> dict[str, Any]:
    """A domain event as other services receive it: ``{event_id, type, occurred_at, order}``."""
    return {
        "event_id": new_id(),
        "type": event_type,
        "occurred_at": isoformat(utcnow()),
        "order": order_json(order),
    }


class EventEmitter:
    """Adds the notify message and the domain event of each announced change to a transaction."""

    def __init__(self, exchange: str, notify_route: Any):
        self.exchange = exchange
        self.notify_route = notify_route

    def event_for(self, status: str) -> str | None:
        """The event a move into ``status`` announces, if any."""
        return ORDER_EVENTS.get(status)  # type: ignore[call-overload]

    def emit(self, uow: UnitOfWork, announced: list[Announcement]) -> None:
        """Enqueue, in ``uow``, the email and domain event of each announcement.

        The order documents are built now, at commit, so they show the order as it is committed.
        """
        for event in announced:
            order, event_type = event.order, event.event_type
            if event.occurrence is None:
                uow.enqueue(self.notify_route, order_id=order.id, event_type=event_type)
            else:
                uow.enqueue(
                    self.notify_route, order_id=order.id, event_type=event_type, occurrence=event.occurrence
                )
            uow.publish_event(self.exchange, event_type, event_body(event_type, order), order_id=order.id)
