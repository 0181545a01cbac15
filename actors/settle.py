"""settle: apply a payment result reported by the provider's webhook.

payment.succeeded on an order awaiting payment -> PLACED with its holds COMMITTED; on an order
already cancelled -> the late-payment policy (reinstate if it timed out and stock can be held
again, else refund); payment.succeeded for an attempt the customer replaced with another -> that
attempt refunded, the order kept on its current attempt (one charge kept in the end);
payment.failed -> CANCELLED payment_failed with its holds RELEASED and the stock back;
refund.succeeded -> that refund SUCCEEDED, counted in the payment's ``refunded_cents`` (the
payment PARTIALLY_REFUNDED or REFUNDED), and a return it pays back REFUNDED.

A signature proves less than it seems (a faulty provider, a replayed test event and a leaked
secret all sign correctly), so an event is applied only when it agrees with the payment it is
about (models.webhook_agreement): first with our records, then, before anything changes, with
the provider's own record of the payment, fetched outside any transaction. An event that
disagrees is recorded with outcome ``mismatch``, logged and counted, and changes nothing.
Each event is applied once (its row records the outcome); any event arriving when the order
has already moved on changes nothing and says so in the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import bindparam, or_, select, update

from messaging.queues import SETTLE
from models.clock import utcnow
from models.order_flow import FollowUp, fail_payment, late_payment, place, replaced_payment_succeeded
from models.order_record import OrderRecord, PaymentRecord
from models.refunds import find_refund, record_provider_refund, refund_confirmed
from models.repository import find_payment
from models.state import OrderStatus, PaymentStatus, RefundStatus
from models.tables import Payment, WebhookEvent, table_of
from models.unit_of_work import UnitOfWork
from models.webhook_agreement import (
    HANDLED_TYPES,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    REFUND_SUCCEEDED,
    UNHANDLED_OUTCOME,
    Claims,
    disagreements_with_provider,
    disagreements_with_provider_refund,
    disagreements_with_records,
    disagreements_with_refund,
    recorded,
)
from providers.payments.provider import ProviderError, ProviderRefused
from workers.follow_up import enqueue_follow_up
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)


class SettleOutcome(StrEnum):
    """What became of a webhook event, recorded in ``webhook_events.outcome`` and logged."""

    # The event changed the order or its payment.
    PLACED = "placed"
    CANCELLED_PAYMENT_FAILED = "cancelled_payment_failed"
    REFUNDED = "refunded"
    LATE_PAYMENT_REINSTATED = "late_payment_reinstated"
    LATE_PAYMENT_REFUNDING = "late_payment_refunding"
    REPLACED_PAYMENT_REFUNDING = "replaced_payment_refunding"
    # It changed nothing: already applied, or the order had moved on (``ignored_in_<status>``).
    ALREADY_PLACED = "already_placed"
    ALREADY_REFUNDED = "already_refunded"
    IGNORED_IN_PENDING = "ignored_in_pending"
    IGNORED_IN_AWAITING_PAYMENT = "ignored_in_awaiting_payment"
    IGNORED_IN_PLACED = "ignored_in_placed"
    IGNORED_IN_SHIPPED = "ignored_in_shipped"
    IGNORED_IN_DELIVERED = "ignored_in_delivered"
    IGNORED_IN_REJECTED = "ignored_in_rejected"
    IGNORED_IN_CANCELLED = "ignored_in_cancelled"
    # It was refused or is not ours to act on.
    MISMATCH = "mismatch"
    UNKNOWN_PAYMENT = "unknown_payment"
    UNHANDLED_TYPE = UNHANDLED_OUTCOME

    @classmethod
    def ignored_in(cls, status: str) -> SettleOutcome:
        """The event came for an order in ``status``, where it changes nothing."""
        return cls(f"ignored_in_{status.lower()}")


MISMATCHES_TOTAL = Counter(
    "orders_webhook_mismatches_total",
    "Signed provider events refused because they disagree with our records or the provider's",
    ["event_type", "field"],
)


class _Change(Enum):
    """What an event would change: only these need the provider's confirmation first."""

    PLACE = "place"
    FAIL = "fail"
    LATE_PAYMENT = "late_payment"
    REPLACED_PAYMENT = "replaced_payment"


class _Kind(Enum):
    """What the provider is asked about: a payment or a refund."""

    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True)
class _ProviderNeeded:
    """The event would change something: the provider's record of this object must be read first."""

    kind: _Kind
    provider_id: str


@dataclass(frozen=True)
class _Asked:
    """What the provider answered about one payment or refund (``record`` None: it has no such one)."""

    record: Any
    kind: _Kind
    provider_id: str

    def about(self, kind: _Kind, provider_id: str | None) -> bool:
        """Whether this answer is about that object."""
        return self.kind is kind and self.provider_id == provider_id


@dataclass(frozen=True)
class _Verdict:
    outcome: SettleOutcome
    disagreed: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


_events = table_of(WebhookEvent)
_payments = table_of(Payment)
_LOCK_EVENT = (
    select(_events.c.type, _events.c.payload, _events.c.processed_at, _events.c.outcome)
    .where(_events.c.id == bindparam("event_id"))
    .with_for_update()
)
_RECORD_OUTCOME = (
    update(_events)
    .where(_events.c.id == bindparam("event_id"))
    .values(processed_at=bindparam("now"), outcome=bindparam("outcome"))
)
_PAYMENTS_NAMED = select(_payments.c.id, _payments.c.order_id, _payments.c.provider_payment_id).where(
    or_(
        _payments.c.provider_payment_id == bindparam("provider_payment_id"),
        _payments.c.id == bindparam("payment_id"),
    )
)


async def _payment_named(uow: UnitOfWork, claims: Claims) -> tuple[OrderRecord | None, PaymentRecord | None]:
    """The payment the event is about, its order locked; (order, None) when only the order is known.

    A provider id we recorded decides which payment it is: it is bound to that one payment, and
    the event's metadata is then only a claim to check. Without it (the webhook overtook `pay`),
    the metadata names the payment (whose order it belongs to, whatever the event says) and
    the provider must confirm it. The id is unique to one payment and, once recorded, never
    changes: it can be read before the order is locked.
    """
    payment_id, order_id = claims.payment_id, claims.order_id
    if claims.provider_payment_id or payment_id:
        rows = (
            await (await uow.connection()).execute(
                _PAYMENTS_NAMED, {"provider_payment_id": claims.provider_payment_id, "payment_id": payment_id}
            )
        ).all()
        owner = next(
            (
                row
                for row in rows
                if claims.provider_payment_id and row.provider_payment_id == claims.provider_payment_id
            ),
            None,
        )
        named = next((row for row in rows if row.id == payment_id), None)
        if owner is not None:
            payment_id, order_id = owner.id, owner.order_id
        elif named is not None:
            order_id = named.order_id
    order = await uow.lock_order(order_id) if order_id else None
    payment = find_payment(order, payment_id=payment_id) if order is not None and payment_id else None
    return order, payment


def _plan_success(order: OrderRecord, payment: PaymentRecord) -> _Change | SettleOutcome:
    current = order.payment
    if current is not None and current.id != payment.id:
        # The customer replaced this attempt: the order follows its current attempt only, and a
        # success of the old one is given back whatever the order's status.
        if payment.status in (PaymentStatus.PENDING, PaymentStatus.CANCELLED):
            return _Change.REPLACED_PAYMENT
        return SettleOutcome.ignored_in(order.status)
    if order.status == OrderStatus.AWAITING_PAYMENT:
        return _Change.PLACE
    if order.status in (OrderStatus.PLACED, OrderStatus.SHIPPED, OrderStatus.DELIVERED):
        return SettleOutcome.ALREADY_PLACED
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.CANCELLED):
        # Already settled one way or another (failed, or a late payment already handled).
        return SettleOutcome.ignored_in(order.status)
    if order.status == OrderStatus.PENDING:
        # Paid before its stock was even held: impossible through `pay`, so refuse to guess.
        return SettleOutcome.IGNORED_IN_PENDING
    return _Change.LATE_PAYMENT


def _plan(event_type: str, order: OrderRecord, payment: PaymentRecord) -> _Change | SettleOutcome:
    """What the event would do to the order as it is now: a change, or the outcome of changing nothing."""
    if event_type == PAYMENT_SUCCEEDED:
        return _plan_success(order, payment)
    assert event_type == PAYMENT_FAILED  # refunds are judged by _judge_refund
    if order.status == OrderStatus.AWAITING_PAYMENT and payment.status == PaymentStatus.PENDING:
        return _Change.FAIL
    return SettleOutcome.ignored_in(order.status)


async def _carry_out(
    uow: UnitOfWork,
    plan: _Change,
    order: OrderRecord,
    payment: PaymentRecord,
    policy: str,
    provider_payment_id: str | None,
) -> SettleOutcome:
    # The webhook overtook `pay` recording the id, and the provider has just confirmed that this
    # payment is the one it belongs to (the unique index keeps it on one payment): the id is
    # written with the payment's move.
    bind = {"provider_payment_id": provider_payment_id} if payment.provider_payment_id is None else {}
    if plan is _Change.PLACE:
        await place(uow, order, payment, **bind)
        return SettleOutcome.PLACED
    if plan is _Change.FAIL:
        await fail_payment(uow, order, payment, **bind)
        return SettleOutcome.CANCELLED_PAYMENT_FAILED
    if plan is _Change.REPLACED_PAYMENT:
        follow_up = await replaced_payment_succeeded(uow, order, payment, **bind)
        enqueue_follow_up(uow, order, follow_up, payment)
        return SettleOutcome.REPLACED_PAYMENT_REFUNDING
    follow_up = await late_payment(uow, order, payment, policy, **bind)
    enqueue_follow_up(uow, order, follow_up)
    if follow_up is FollowUp.NOTHING:
        return SettleOutcome.LATE_PAYMENT_REINSTATED
    return SettleOutcome.LATE_PAYMENT_REFUNDING


def _provider_view(asked: _Asked) -> dict[str, Any]:
    record = asked.record
    if record is None:
        return {f"provider_{asked.kind.value}_id": None}
    if asked.kind is _Kind.REFUND:
        return {
            "provider_payment_id": record.payment_id,
            "refund_id": record.metadata.get("refund_id"),
            "amount": record.amount_cents,
            "currency": record.currency,
            "status": record.status,
        }
    return {
        "order_id": record.metadata.get("order_id"),
        "payment_id": record.metadata.get("payment_id"),
        "amount": record.amount_cents,
        "currency": record.currency,
        "status": record.status,
        "amount_refunded": record.amount_refunded_cents,
    }


def _mismatch(
    disagreed: list[str], claims: Claims, payment: PaymentRecord | None = None, asked: _Asked | None = None
) -> _Verdict:
    """A mismatch verdict with, per disagreeing field, what the event claimed, we recorded and the
    provider said."""
    keys = {name: "status" if name == "refund_not_requested" else name for name in disagreed}
    sources = {"claimed": claims.stated(), "ours": recorded(payment) if payment is not None else {}}
    if asked is not None:
        sources["provider"] = _provider_view(asked)
    details = {
        source: {name: values[key] for name, key in keys.items() if key in values}
        for source, values in sources.items()
    }
    return _Verdict(SettleOutcome.MISMATCH, tuple(disagreed), details)


async def _judge(
    uow: UnitOfWork, claims: Claims, asked: _Asked | None, policy: str
) -> _Verdict | _ProviderNeeded:
    """Decide the event's outcome, applying it when it agrees; nothing is committed here."""
    if claims.event_type not in HANDLED_TYPES:
        return _Verdict(SettleOutcome.UNHANDLED_TYPE)
    order, payment = await _payment_named(uow, claims)
    if order is None:
        return _Verdict(SettleOutcome.UNKNOWN_PAYMENT)
    structlog.contextvars.bind_contextvars(order_id=order.id)
    if payment is None:
        return _mismatch(["payment_id"], claims)
    disagreed = disagreements_with_records(claims, payment)
    if disagreed:
        return _mismatch(disagreed, claims, payment)
    if claims.event_type == REFUND_SUCCEEDED:
        return await _judge_refund(uow, claims, order, payment, asked)
    plan = _plan(claims.event_type, order, payment)
    if isinstance(plan, SettleOutcome):
        return _Verdict(plan)
    # An event naming no provider payment disagrees with our records (checked above).
    assert claims.provider_payment_id is not None
    if asked is None or not asked.about(_Kind.PAYMENT, claims.provider_payment_id):
        return _ProviderNeeded(_Kind.PAYMENT, claims.provider_payment_id)
    disagreed = disagreements_with_provider(claims, payment, asked.record)
    if disagreed:
        return _mismatch(disagreed, claims, payment, asked)
    return _Verdict(await _carry_out(uow, plan, order, payment, policy, claims.provider_payment_id))


async def _judge_refund(
    uow: UnitOfWork, claims: Claims, order: OrderRecord, payment: PaymentRecord, asked: _Asked | None
) -> _Verdict | _ProviderNeeded:
    """Judge a refund event about ``payment``: confirm the refund it names once the provider agrees."""
    connection = await uow.connection()
    refund = None
    if isinstance(claims.refund_id, str):
        refund = await find_refund(connection, provider_refund_id=claims.refund_id)
    if refund is None and claims.our_refund_id:
        # The webhook overtook `refund` recording the provider's id: our id in its metadata names it.
        refund = await find_refund(connection, refund_id=claims.our_refund_id)
    if refund is not None and refund.payment_id != payment.id:
        refund = None
    disagreed = disagreements_with_refund(claims, refund)
    if disagreed:
        return _mismatch(disagreed, claims, payment)
    assert refund is not None and isinstance(claims.refund_id, str)  # checked just above
    if refund.status == RefundStatus.SUCCEEDED:
        return _Verdict(SettleOutcome.ALREADY_REFUNDED)
    if refund.status != RefundStatus.PENDING:
        # We recorded the provider's refusal of this refund; now it reports it made.
        return _mismatch(["refund_status"], claims, payment)
    if asked is None or not asked.about(_Kind.REFUND, claims.refund_id):
        return _ProviderNeeded(_Kind.REFUND, claims.refund_id)
    disagreed = disagreements_with_provider_refund(claims, refund, asked.record)
    if disagreed:
        return _mismatch(disagreed, claims, payment, asked)
    if refund.provider_refund_id is None:
        await record_provider_refund(connection, refund.id, claims.refund_id)
    await refund_confirmed(uow, order, payment, refund)
    return _Verdict(SettleOutcome.REFUNDED)


def _report(claims: Claims, verdict: _Verdict) -> None:
    if verdict.outcome is SettleOutcome.MISMATCH:
        MISMATCHES_TOTAL.labels(claims.event_type, verdict.disagreed[0]).inc()
        # Ids, amounts and statuses only: the payload is not logged whole and holds no secret.
        log.warning(
            "settle.mismatch",
            event_type=claims.event_type,
            disagreed=list(verdict.disagreed),
            **verdict.details,
        )
    log.info(
        "payment.settled",
        event_type=claims.event_type,
        outcome=verdict.outcome,
        provider_payment_id=claims.provider_payment_id,
    )


async def _settle_once(runtime: Runtime, event_id: str, asked: _Asked | None) -> str | _ProviderNeeded | None:
    async with runtime.uow() as uow:
        event = (await (await uow.connection()).execute(_LOCK_EVENT, {"event_id": event_id})).first()
        if event is None:
            log.warning("settle.unknown_event")
            return None
        if event.processed_at is not None:
            log.info("settle.already_done", outcome=event.outcome)
            return event.outcome
        claims = Claims.of(event.type, event.payload)
        verdict = await _judge(uow, claims, asked, runtime.settings.late_payment_policy)
        if isinstance(verdict, _ProviderNeeded):
            return verdict  # leaving the block rolls back: the event stays unprocessed, nothing changed
        await (await uow.connection()).execute(
            _RECORD_OUTCOME, {"event_id": event_id, "now": utcnow(), "outcome": verdict.outcome}
        )
        await uow.commit()
    _report(claims, verdict)
    return verdict.outcome


async def settle_payment(
    runtime: Runtime, event_id: str, order_id: str | None = None, provider_payment_id: str | None = None
) -> str | None:
    """Apply webhook event ``event_id`` if it agrees; returns its recorded outcome (None if no such event).

    ``order_id`` is what the gateway read from the event's metadata (for the log) and
    ``provider_payment_id`` the payment it names; the stored event is what counts. Before an
    event changes anything the provider is asked about the payment, outside any transaction, so
    no row lock is held across the network: when the gateway named the payment, it is asked
    first (one transaction in all); otherwise, or when the provider could not be reached then,
    the event is judged first and the provider asked only if it would change something. An
    unreachable provider fails the step, which is retried with the event still unprocessed.
    """
    asked = unreachable = None
    if provider_payment_id:
        try:
            record = await runtime.psp.get_payment(provider_payment_id)
            asked = _Asked(record, _Kind.PAYMENT, provider_payment_id)
        except (ProviderError, ProviderRefused) as error:
            unreachable = error
    outcome = await _settle_once(runtime, event_id, asked=asked)
    if isinstance(outcome, _ProviderNeeded):
        needed = outcome
        if (
            unreachable is not None
            and needed.kind is _Kind.PAYMENT
            and needed.provider_id == provider_payment_id
        ):
            raise unreachable
        answer: Any
        if needed.kind is _Kind.REFUND:
            answer = await runtime.psp.get_refund(needed.provider_id)
        else:
            answer = await runtime.psp.get_payment(needed.provider_id)
        outcome = await _settle_once(runtime, event_id, asked=_Asked(answer, needed.kind, needed.provider_id))
        # The provider was just asked about what the stored event names: nothing more is needed.
        assert not isinstance(outcome, _ProviderNeeded)
    return outcome


settle = step_actor(SETTLE, settle_payment)
