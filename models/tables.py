"""SQLAlchemy tables of the fleet; MariaDB/MySQL is the source of truth for all of them.

Status columns are mapped under a private name (``_status``) and exposed read-only, so that ORM
code changes them only through :mod:`models.state`; the steps' statement-level moves go through
:mod:`models.order_moves`, which checks the same table of legal moves.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from models.clock import utcnow

Timestamp = DATETIME(fsp=6)


def new_id() -> str:
    """A fresh opaque identifier (UUID4 as 32 hex digits)."""
    return uuid.uuid4().hex


def table_of(model: type[Base]) -> Table:
    """The table ``model`` is mapped to, typed as one (SQLAlchemy types ``__table__`` as any FROM)."""
    table = model.__table__
    assert isinstance(table, Table), f"{model.__name__} is not mapped to a single table"
    return table


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: Timestamp,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # Stored in its canonical form (models.identity.normalize_email) and compared byte for byte:
    # a case- or accent-insensitive collation would make zoe@ and zoë@ one account.
    email: Mapped[str] = mapped_column(String(254, collation="utf8mb4_bin"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A payment-provider token (e.g. pm_...) used when an order names no payment; never card data.
    default_payment_token: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CartItem(Base):
    """One line of a customer's cart: what and how many, priced only at checkout."""

    __tablename__ = "cart_items"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("quantity > 0", name="ck_cart_items_quantity_positive"),)


class WishlistItem(Base):
    """A SKU a customer keeps for later."""

    __tablename__ = "wishlist_items"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class Item(Base):
    __tablename__ = "items"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    upc: Mapped[str | None] = mapped_column(String(32))
    picture_urls: Mapped[list[Any] | None] = mapped_column(JSON)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    stock: Mapped[Stock] = relationship(back_populates="item", lazy="joined", uselist=False)

    __table_args__ = (CheckConstraint("price_cents >= 0", name="ck_items_price_nonnegative"),)


class Stock(Base):
    """Sellable quantity of one SKU; ``received`` is every unit ever booked in."""

    __tablename__ = "stock"

    sku: Mapped[str] = mapped_column(ForeignKey("items.sku"), primary_key=True)
    available: Mapped[int] = mapped_column(Integer, default=0)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    # Units sold to orders since moved to the archive (their COMMITTED holds left with them).
    committed_archived: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    item: Mapped[Item] = relationship(back_populates="stock")

    __table_args__ = (CheckConstraint("available >= 0", name="ck_stock_available_nonnegative"),)


class StockReceipt(Base):
    __tablename__ = "stock_receipts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(ForeignKey("items.sku"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    _status: Mapped[str] = mapped_column("status", String(32))
    reason: Mapped[str | None] = mapped_column(String(32))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    hold_expires_at: Mapped[datetime | None] = mapped_column()
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # "cart" when made by checking out the cart: placing it then empties those cart lines.
    source: Mapped[str] = mapped_column(String(16), default="api", server_default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        lazy="selectin", order_by="OrderLine.sku", cascade="all, delete-orphan"
    )
    history: Mapped[list[OrderHistory]] = relationship(
        lazy="selectin", order_by="OrderHistory.id", cascade="all, delete-orphan"
    )
    payments: Mapped[list[Payment]] = relationship(
        lazy="selectin", order_by="Payment.attempt", cascade="all, delete-orphan"
    )
    holds: Mapped[list[ReservedStock]] = relationship(
        lazy="selectin", order_by="ReservedStock.sku", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_orders_account_created", "account_id", "created_at"),
        Index("ix_orders_status_updated", "status", "updated_at"),
        # The admin's order list: newest first, optionally by status.
        Index("ix_orders_created", "created_at"),
        Index("ix_orders_status_created", "status", "created_at"),
    )

    @hybrid_property
    def status(self) -> str:
        return self._status

    @property
    def payment(self) -> Payment | None:
        """The latest payment attempt, if any."""
        return self.payments[-1] if self.payments else None


class OrderLine(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    # None when the SKU was unknown at checkout; such an order is rejected by `reserve`.
    unit_price_cents: Mapped[int | None] = mapped_column(BigInteger)


class OrderHistory(Base):
    __tablename__ = "order_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ReservedStock(Base):
    """A hold of stock for one order line: HELD until paid (COMMITTED) or given back (RELEASED)."""

    __tablename__ = "reserved_stock"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    sku: Mapped[str] = mapped_column(ForeignKey("items.sku"))
    quantity: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_reserved_stock_order", "order_id"),
        Index("ix_reserved_stock_state_expires", "state", "expires_at"),
        Index("ix_reserved_stock_sku_state", "sku", "state"),
        CheckConstraint("quantity > 0", name="ck_reserved_stock_quantity_positive"),
    )


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    method: Mapped[str] = mapped_column(String(16))
    token: Mapped[str | None] = mapped_column(String(128))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    _status: Mapped[str] = mapped_column("status", String(24))
    provider_payment_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(String(512))
    # The provider's id of the payment's one whole refund, from before refunds had rows of their
    # own: migration 0005 copied it to ``refunds``, and nothing writes it any more.
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))
    # What the provider confirmed it gave back: the sum of this payment's SUCCEEDED refunds, kept
    # here so that reading an order needs no refund rows.
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("order_id", "attempt", name="uq_payments_order_attempt"),
        CheckConstraint("refunded_cents <= amount_cents", name="ck_payments_refund_within_capture"),
    )

    @hybrid_property
    def status(self) -> str:
        return self._status


class Refund(Base):
    """One refund of (part of) a captured payment: its own provider call with its own key.

    PENDING from the request until the provider confirms (SUCCEEDED) or refuses (FAILED). The
    refund the order flow itself starts for a payment (a paid order cancelled, a late or replaced
    payment) has the payment's own id, so it exists once whatever redelivers the message.
    """

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # a models.state.RefundStatus
    reason: Mapped[str | None] = mapped_column(String(255))
    # Set when the refund pays back a received return.
    return_id: Mapped[str | None] = mapped_column(String(32))
    provider_refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_refunds_order", "order_id"),
        Index("ix_refunds_payment_status", "payment_id", "status"),
        CheckConstraint("amount_cents > 0", name="ck_refunds_amount_positive"),
    )


class Return(Base):
    """A customer's request to send delivered items back: REQUESTED -> RECEIVED -> REFUNDED, or REJECTED."""

    __tablename__ = "returns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    status: Mapped[str] = mapped_column(String(16))  # a models.state.ReturnStatus
    reason: Mapped[str | None] = mapped_column(String(500))
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    # Whether the received units went back on sale (None until received).
    restocked: Mapped[bool | None] = mapped_column()
    refund_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_returns_order", "order_id"),)


class ReturnLine(Base):
    """What one return sends back of one order line, at the unit price the customer paid."""

    __tablename__ = "return_lines"

    return_id: Mapped[str] = mapped_column(ForeignKey("returns.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The order too, so that lines move to the archive with their order like every other child.
    order_id: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_return_lines_order", "order_id"),
        CheckConstraint("quantity > 0", name="ck_return_lines_quantity_positive"),
    )


class IdempotencyKey(Base):
    """One client-chosen key per account, bound to the request it first came with."""

    __tablename__ = "idempotency_keys"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    # Binary collation: client keys differing only in case are different keys.
    key: Mapped[str] = mapped_column(String(255, collation="utf8mb4_bin"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(32))
    # What the first request made besides the order, when it made something (a return, a refund).
    result_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Admin refund keys are looked up without an account.
    __table_args__ = (Index("ix_idempotency_keys_scope_key", "scope", "key"),)


class WebhookEvent(Base):
    """Every provider event seen, once: its id is the deduplication key."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(128, collation="utf8mb4_bin"), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(64))


class OutboxMessage(Base):
    """A message a committed transition must cause; published after commit, then marked sent.

    Either a step for the workers (``queue_name``/``actor_name``, arguments in ``kwargs``) or a
    domain event for other services (``exchange``/``routing_key``, the event body in ``kwargs``).
    """

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    queue_name: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str | None] = mapped_column(String(64))
    exchange: Mapped[str | None] = mapped_column(String(128))
    routing_key: Mapped[str | None] = mapped_column(String(128))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    delay_ms: Mapped[int | None] = mapped_column(BigInteger)
    order_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "created_at"),)


class Notification(Base):
    """The ledger of customer emails: one row per order and event, so each goes out once."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(32))
    # The event type, and for an event an order can have several times (a refund, a return, an
    # address change) which occurrence: ``order.refunded:<refund id>``.
    event: Mapped[str] = mapped_column(String(96))
    recipient: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16))  # a models.state.NotificationStatus
    # While SENDING, other deliveries of the same message keep off until then (a crash frees it).
    claimed_until: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("order_id", "event", name="uq_notifications_order_event"),)


class ReconciliationReport(Base):
    """One run of the stock reconciliation: what it checked and the drift it found or repaired."""

    __tablename__ = "reconciliation_reports"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    skus_checked: Mapped[int] = mapped_column(Integer)
    drift_count: Mapped[int] = mapped_column(Integer)
    repaired: Mapped[bool] = mapped_column(default=False)
    details: Mapped[list[Any]] = mapped_column(JSON)


def _archive_of(table: Table, *extra: Any) -> Table:
    """A table with the same columns as ``table`` (no foreign keys, no defaults) for moved rows."""
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False)
        for c in table.columns
    ]
    return Table(f"{table.name}_archive", Base.metadata, *columns, *extra)


# Finished orders move here after ARCHIVE_AFTER_SECONDS, children first, one batch per transaction.
orders_archive = _archive_of(
    table_of(Order),
    Column("archived_at", Timestamp, nullable=False),
    Index("ix_orders_archive_account_created", "account_id", "created_at"),
    Index("ix_orders_archive_created", "created_at"),
    Index("ix_orders_archive_status_created", "status", "created_at"),
)
order_lines_archive = _archive_of(table_of(OrderLine))
order_history_archive = _archive_of(
    table_of(OrderHistory), Index("ix_order_history_archive_order", "order_id")
)
payments_archive = _archive_of(table_of(Payment), Index("ix_payments_archive_order", "order_id"))
reserved_stock_archive = _archive_of(
    table_of(ReservedStock), Index("ix_reserved_stock_archive_order", "order_id")
)
refunds_archive = _archive_of(table_of(Refund), Index("ix_refunds_archive_order", "order_id"))
returns_archive = _archive_of(table_of(Return), Index("ix_returns_archive_order", "order_id"))
return_lines_archive = _archive_of(table_of(ReturnLine), Index("ix_return_lines_archive_order", "order_id"))

#: Hot table -> its archive, children before parents (the order rows move last).
ARCHIVED_CHILDREN = [
    (table_of(OrderLine), order_lines_archive),
    (table_of(OrderHistory), order_history_archive),
    (table_of(ReturnLine), return_lines_archive),
    (table_of(Return), returns_archive),
    (table_of(Refund), refunds_archive),
    (table_of(Payment), payments_archive),
    (table_of(ReservedStock), reserved_stock_archive),
]
