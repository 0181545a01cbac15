"""The chaos run's email check: exactly one email per order and announced event, and how late it came.

An email is one occurrence of an event: ``order.placed`` once per order, but ``order.refunded``
once per confirmed refund, ``order.updated`` once per address or payment change, a return's
events once per return. Its key is the notify ledger's name of it, ``event_type`` or
``event_type:occurrence`` (actors/notify.py ``ledger_event``), which the email carries in its
Message-ID (``<order.event.occurrence@domain>``).

What should have gone out is read from each order's own records: every status of
``models.events.ORDER_EVENTS`` its history entered, each SUCCEEDED refund, each payment attempt
after the first, each ``address_changed`` note, each return (and each return received); not from
the outbox or the ledger, so a change nobody announced shows up as a missing email. An address
change's occurrence is a fresh id recorded nowhere else, so those emails are counted per order
rather than named. The mail sink's arrivals are compared with that set only once the notify
ledger has caught up (:func:`wait_for_notify`): judged earlier, emails still queued behind the
load would look lost, and judged from a snapshot taken too early, no email at all would look like
no duplicate.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import func, select

from bench.faults.records import OrderRecords
from bench.stats import percentile
from gateway.orders.address_change import ADDRESS_CHANGED_NOTE
from messaging.queues import NOTIFY
from models.events import (
    ORDER_EVENTS,
    REFUNDED_EVENT,
    RETURN_RECEIVED_EVENT,
    RETURN_REQUESTED_EVENT,
    UPDATED_EVENT,
)
from models.state import OrderStatus, PaymentStatus, RefundStatus, ReturnStatus
from models.tables import Notification, Order, OutboxMessage, Payment, Refund, Return

#: Ledger states of an email nobody has finished with yet.
UNFINISHED = ("PENDING", "SENDING")
EXAMPLES = 3
#: Marks the occurrence of an expected email whose occurrence id is recorded nowhere but in the
#: email (an address change's): ``order.updated:?1`` is the order's first such email, whichever id it has.
UNNAMED = "?"

Key = tuple[str, str]  # (order id, ledger event: ``event_type`` or ``event_type:occurrence``)


def ledger_event(event_type: str, occurrence: str | None = None) -> str:
    """The notify ledger's name of one email, as actors/notify.py ``ledger_event`` writes it (the
    actors are not imported here: importing one declares it on a broker)."""
    return f"{event_type}:{occurrence}" if occurrence else event_type


def event_of(message: EmailMessage) -> str | None:
    """The ledger event of an email: ``X-Order-Event``, with the occurrence its Message-ID names
    (``<order.event.occurrence@domain>``) when there is one."""
    event = message["X-Order-Event"]
    if event is None:
        return None
    event, order_id = str(event), str(message["X-Order-Id"] or "")
    local = str(message["Message-ID"] or "").strip().removeprefix("<").removesuffix(">").rsplit("@", 1)[0]
    named = f"{order_id}.{event}."
    return ledger_event(event, local[len(named) :]) if local.startswith(named) else event


@dataclass(frozen=True)
class Arrival:
    """One email as the sink received it."""

    order_id: str | None
    event: str | None  # the ledger event: the event type, and its occurrence if it has one
    at: float  # wall clock (time.time()) of its arrival

    @classmethod
    def of(cls, at: float, message: EmailMessage) -> Arrival:
        return cls(message["X-Order-Id"], event_of(message), at)

    @property
    def key(self) -> Key:
        return (self.order_id or "?", self.event or "?")


@dataclass(frozen=True)
class LedgerEntry:
    """A notifications row: how far the notify step got with one email."""

    status: str
    last_error: str | None = None
    #: Deliveries that claimed the row: more than one means a claim was taken over.
    attempts: int = 1


class MailDirSink:
    """The fleet's own mail sink (sandbox/mail.py, a process of its own as a real relay is),
    read from its store: one .eml per message, stamped with ``X-Received-At``."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def received(self) -> list[tuple[float, EmailMessage]]:
        """Every (arrival time, headers) stored so far, in arrival order."""
        arrivals = []
        for path in sorted(self.directory.glob("*.eml")):
            with open(path, "rb") as file:
                message = BytesParser(policy=policy.default).parse(file, headersonly=True)
            stamp = str(message["X-Received-At"] or "")
            try:
                at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            except ValueError:  # the file's name starts with its arrival in nanoseconds
                at = int(path.name.split("-", 1)[0]) / 1e9
            arrivals.append((at, message))
        return arrivals


@dataclass
class EmailFindings:
    figures: dict[str, object] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


def _epoch(value: datetime) -> float:
    """A stored naive-UTC time as seconds since the epoch, comparable with time.time()."""
    return value.replace(tzinfo=UTC).timestamp()


def expected_emails(orders: Iterable[OrderRecords]) -> dict[Key, float | None]:
    """Every email the orders' records announce, with when its change happened (None if unknown).

    One email per order and status event however often the history names the status: the ledger
    is keyed that way, so a second PLACED (a reinstated order) is not a second confirmation. One
    per occurrence of the others: each SUCCEEDED refund, payment attempt after the first, address
    change (unnamed, see :data:`UNNAMED`), return requested and return received.
    """
    expected: dict[Key, float | None] = {}
    for records in orders:
        order = records.order
        for entry in order.history:
            event = ORDER_EVENTS.get(entry.status)
            if event is not None:
                expected.setdefault((order.id, event), _epoch(entry.at))
        if order.status in ORDER_EVENTS:
            expected.setdefault((order.id, ORDER_EVENTS[OrderStatus(order.status)]), None)
        for refund in records.refunds:
            if refund.status == RefundStatus.SUCCEEDED:
                expected[(order.id, ledger_event(REFUNDED_EVENT, refund.id))] = _epoch(refund.updated_at)
        for payment in order.payments:
            if payment.attempt > 1:
                expected[(order.id, ledger_event(UPDATED_EVENT, payment.id))] = _epoch(payment.created_at)
        changes = [entry for entry in order.history if entry.note == ADDRESS_CHANGED_NOTE]
        for number, entry in enumerate(changes, 1):
            expected[(order.id, ledger_event(UPDATED_EVENT, f"{UNNAMED}{number}"))] = _epoch(entry.at)
        for ret in records.returns:
            expected[(order.id, ledger_event(RETURN_REQUESTED_EVENT, ret.id))] = _epoch(ret.created_at)
            if ret.status in (ReturnStatus.RECEIVED, ReturnStatus.REFUNDED):
                expected[(order.id, ledger_event(RETURN_RECEIVED_EVENT, ret.id))] = None
    return expected


def name_unnamed(
    expected: dict[Key, float | None], arrivals: list[Arrival], ledger: dict[Key, LedgerEntry]
) -> dict[Key, float | None]:
    """``expected`` with each unnamed occurrence replaced by an email of the same order and event
    type that nothing else expects: first those that arrived (in order of arrival), then those
    only the ledger knows; an unnamed one left over stays, as a missing email."""
    unnamed: dict[tuple[str, str], list[Key]] = {}
    for key in expected:
        event_type, _, occurrence = key[1].partition(":")
        if occurrence.startswith(UNNAMED):
            unnamed.setdefault((key[0], event_type), []).append(key)
    if not unnamed:
        return expected
    candidates: dict[tuple[str, str], list[Key]] = {}
    seen: set[Key] = set()
    for key in [arrival.key for arrival in sorted(arrivals, key=lambda a: a.at)] + sorted(ledger):
        event_type, _, occurrence = key[1].partition(":")
        if occurrence and key not in expected and key not in seen:
            seen.add(key)
            candidates.setdefault((key[0], event_type), []).append(key)
    named = dict(expected)
    for slot, keys in unnamed.items():
        for placeholder, found in zip(keys, candidates.get(slot, []), strict=False):
            named[found] = named.pop(placeholder)
    return named


def _spread(values: list[float]) -> str:
    if not values:
        return "- (none)"
    p50, p95 = percentile(values, 0.50), percentile(values, 0.95)
    return f"{p50:.1f} / {p95:.1f} / {max(values):.1f} ({len(values)} emails)"


def _examples(keys: Iterable[Key]) -> str:
    return ", ".join(f"{order_id} {event}" for order_id, event in sorted(keys)[:EXAMPLES])


def judge_emails(
    expected: dict[Key, float | None],
    arrivals: list[Arrival],
    ledger: dict[Key, LedgerEntry],
    load_ended_at: float,
    orders: int,
) -> EmailFindings:
    """Compare what should have been sent with what the sink got; figures for the table, violations.

    Missing, duplicate and unexpected emails are violations, and so is a ledger row FAILED (the
    chaos run's mail server never refuses or goes away) or still unfinished. Lateness is the time
    from the transition to the email's (first) arrival, split by whether the transition happened
    while the load ran (until ``load_ended_at``, wall clock) or after. The unnamed occurrences of
    ``expected`` are first given the ids of emails nothing else expects (:func:`name_unnamed`).
    """
    findings = EmailFindings()
    expected = name_unnamed(expected, arrivals, ledger)
    received = Counter(arrival.key for arrival in arrivals)
    first_arrival: dict[Key, float] = {}
    for arrival in arrivals:
        first_arrival[arrival.key] = min(arrival.at, first_arrival.get(arrival.key, arrival.at))
    missing = [key for key in expected if key not in received]
    copies = {key: n for key, n in received.items() if n > 1 and key in expected}
    # A delivery killed between the mail server's acceptance and the SENT mark is taken over
    # once its claim lapses and sends the email again, under the same Message-ID (a mailbox
    # keeps one). Any other second copy means two deliveries sent under one claim: a defect.
    resent = {key: n for key, n in copies.items() if key in ledger and ledger[key].attempts > 1}
    duplicates = {key: n for key, n in copies.items() if key not in resent}
    unexpected = [key for key in received if key not in expected]
    failed = {key: entry for key, entry in ledger.items() if entry.status == "FAILED"}
    unfinished = {key: entry for key, entry in ledger.items() if entry.status in UNFINISHED}

    figures = findings.figures
    figures["emails expected (from order history)"] = len(expected)
    figures["emails received"] = len(arrivals)
    figures["emails missing"] = len(missing)
    figures["duplicate emails"] = sum(n - 1 for n in duplicates.values())
    figures["re-sent after an interrupted delivery (same Message-ID)"] = sum(n - 1 for n in resent.values())
    figures["unexpected emails"] = sum(received[key] for key in unexpected)
    figures["emails FAILED in the ledger"] = len(failed)

    during, after = [], []
    for key, happened_at in expected.items():
        if happened_at is None or key not in first_arrival:
            continue
        (during if happened_at <= load_ended_at else after).append(max(first_arrival[key] - happened_at, 0.0))
    figures["email lateness p50 / p95 / max (s)"] = _spread(during + after)
    figures["email lateness, transitions during the load (s)"] = _spread(during)
    figures["email lateness, transitions after the load (s)"] = _spread(after)

    violations = findings.violations
    if orders and not expected:
        violations.append(f"{orders} orders but their history announces no email at all")
    if missing:
        by_ledger = Counter(ledger[key].status if key in ledger else "no ledger row" for key in missing)
        violations.append(
            f"{len(missing)} of {len(expected)} expected emails never arrived "
            f"(ledger: {', '.join(f'{s} {n}' for s, n in sorted(by_ledger.items()))}), "
            f"e.g. {_examples(missing)}"
        )
    if duplicates:
        violations.append(
            f"{len(duplicates)} emails arrived more than once though one delivery claimed them "
            f"({sum(duplicates.values())} copies), e.g. {_examples(duplicates)}"
        )
    if unexpected:
        violations.append(
            f"{len(unexpected)} emails for no transition in the history, e.g. {_examples(unexpected)}"
        )
    if failed:
        key, entry = sorted(failed.items())[0]
        violations.append(
            f"{len(failed)} emails recorded FAILED though the mail server was up, "
            f"e.g. {_examples(failed)} ({key[0]}: {entry.last_error})"
        )
    if unfinished:
        states = Counter(entry.status for entry in unfinished.values())
        violations.append(
            f"{len(unfinished)} ledger rows never finished "
            f"({', '.join(f'{s} {n}' for s, n in sorted(states.items()))}), "
            f"e.g. {_examples(unfinished)}"
        )
    return findings


async def load_ledger(sessionmaker) -> dict[Key, LedgerEntry]:
    """The notifications ledger, by order and event."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    Notification.order_id,
                    Notification.event,
                    Notification.status,
                    Notification.last_error,
                    Notification.attempts,
                )
            )
        ).all()
    return {
        (order_id, event): LedgerEntry(status, error, attempts)
        for order_id, event, status, error, attempts in rows
    }


async def notify_backlog(sessionmaker) -> dict[str, int]:
    """What can still cause an email: unfinished orders, refunds and returns, notify messages not
    done with."""
    async with sessionmaker() as session:
        unsettled = await session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order._status.in_([OrderStatus.PENDING.value, OrderStatus.AWAITING_PAYMENT.value]))
        )
        refunding = await session.scalar(
            select(func.count())
            .select_from(Payment)
            .where(Payment._status == PaymentStatus.REFUND_PENDING.value)
        )
        refunds = await session.scalar(
            select(func.count()).select_from(Refund).where(Refund.status == RefundStatus.PENDING.value)
        )
        returns = await session.scalar(
            select(func.count()).select_from(Return).where(Return.status == ReturnStatus.RECEIVED.value)
        )
        outbox = (
            await session.execute(
                select(OutboxMessage.order_id, OutboxMessage.kwargs, OutboxMessage.sent_at).where(
                    OutboxMessage.actor_name == NOTIFY.actor_name
                )
            )
        ).all()
    ledger = await load_ledger(sessionmaker)
    finished = {key for key, entry in ledger.items() if entry.status not in UNFINISHED}
    enqueued = {
        (order_id, ledger_event(kwargs.get("event_type"), kwargs.get("occurrence")))
        for order_id, kwargs, _ in outbox
    }
    return {
        "orders not final": unsettled or 0,
        "payments refund pending": refunding or 0,
        "refunds pending": refunds or 0,
        "returns received, refund not confirmed": returns or 0,
        "notify messages unpublished": sum(1 for *_, sent_at in outbox if sent_at is None),
        "ledger rows unfinished": len(ledger) - len(finished),
        "notify messages not yet handled": len(enqueued - finished),
    }


async def wait_for_notify(sessionmaker, timeout: float) -> tuple[dict[str, int], float]:
    """Poll until nothing can cause an email any more (or ``timeout``); returns what is left and the wait."""
    started = time.monotonic()
    while True:
        left = {what: n for what, n in (await notify_backlog(sessionmaker)).items() if n}
        if not left or time.monotonic() - started > timeout:
            return left, time.monotonic() - started
        await asyncio.sleep(0.5)
