"""``GET /orders/{id}/events``: server-sent events of one order's status until it is final.

The first event is the current status; then the order is read again from the database whenever
Redis nudges (:mod:`gateway.orders.nudges`), every :data:`RECHECK_SECONDS` in case a nudge was lost,
and every half second while Redis is away. An event is sent only when the status differs from
the last one sent, so several nudges for one change, or two changes between reads, never repeat
a status (an intermediate one may be skipped). The stream ends right after a final status.

An archived order is final by definition: its stream is that one status, then the end.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime

import msgspec
import structlog
from aiohttp import hdrs, web
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.http.auth import Caller
from gateway.http.order_access import not_found
from gateway.keys import REDIS, SESSIONMAKER, STOPPING
from gateway.orders.nudges import Nudges
from gateway.orders.schemas import ServerSentEvent
from models.state import FINAL_STATUSES
from models.tables import Order, OrderHistory, order_history_archive, orders_archive
from models.views import status_event

log = structlog.get_logger(__name__)

#: Re-read even without a nudge this often: a nudge is best effort and may be lost.
RECHECK_SECONDS = 5.0
#: A comment line this often keeps proxies from closing an idle stream and reveals a gone client.
KEEPALIVE_SECONDS = 15.0
#: A stream ends after this long; the client's EventSource reconnects (and re-reads the status).
MAX_STREAM_SECONDS = 600.0
# Longest wait between checks for a client that hung up or an app that is shutting down: aiohttp
# does not cancel the handler when its client goes away.
_TICK_SECONDS = 1.0
_KEEPALIVE = b": keepalive\n\n"


@dataclass(frozen=True)
class StatusSnapshot:
    """An order's status as read at one moment, with who owns it and when it was entered."""

    order_id: str
    account_id: str
    status: str
    reason: str | None
    at: datetime | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def event(self) -> bytes:
        """This status as one ``status`` event of the stream."""
        # The standard library's spacing, as the stream has always written its data lines.
        data = json.dumps(msgspec.to_builtins(status_event(self.order_id, self.status, self.reason, self.at)))
        return ServerSentEvent(event="status", data=data).frame()


def _status_query(order_id: str):
    entered = (
        select(OrderHistory.at)
        .where(OrderHistory.order_id == Order.id)
        .order_by(OrderHistory.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(Order.id, Order.account_id, Order.status, Order.reason, entered).where(Order.id == order_id)


def _archived_status_query(order_id: str):
    orders, history = orders_archive.c, order_history_archive.c
    entered = (
        select(history.at)
        .where(history.order_id == orders.id)
        .order_by(history.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(orders.id, orders.account_id, orders.status, orders.reason, entered).where(
        orders.id == order_id
    )


async def read_status(sessionmaker: async_sessionmaker[AsyncSession], order_id: str) -> StatusSnapshot | None:
    """The order's current status in a short session of its own (so it sees the latest commit).

    The archive is read only after a miss in the hot table, so an order being archived meanwhile
    is found in one or the other.
    """
    async with sessionmaker() as session:
        row = (await session.execute(_status_query(order_id))).first()
        if row is None:
            row = (await session.execute(_archived_status_query(order_id))).first()
    return StatusSnapshot(*row) if row is not None else None


async def stream_status(request: web.Request, order_id: str, caller: Caller) -> web.StreamResponse:
    """Answer ``request`` with the event stream of ``order_id``; 404 when ``caller`` may not see it."""
    app = request.app
    if not await _visible(app[SESSIONMAKER], order_id, caller):
        raise not_found(order_id, caller)
    async with Nudges(app[REDIS], order_id) as nudges:
        # Read only once subscribed: a change committed later is nudged, an earlier one is read here.
        current = await read_status(app[SESSIONMAKER], order_id)
        if current is None:  # gone since the check above: still nothing to stream
            raise not_found(order_id, caller)
        response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: "text/event-stream",
                hdrs.CACHE_CONTROL: "no-cache",
                # Reverse proxies (nginx) would otherwise buffer the events.
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        try:
            await _follow(request, response, nudges, current)
            await response.write_eof()
        except ConnectionResetError:
            log.info("live.client_gone")
        except SQLAlchemyError as error:
            # The status line is sent: all that is left is to end the stream; the client reconnects.
            log.warning("live.database_unavailable", error=repr(error))
            await _end_quietly(response)
    return response


async def _visible(sessionmaker: async_sessionmaker[AsyncSession], order_id: str, caller: Caller) -> bool:
    # Checked before subscribing, so that probing others' order ids costs Redis nothing.
    snapshot = await read_status(sessionmaker, order_id)
    return snapshot is not None and caller.may_see(snapshot.account_id)


async def _follow(
    request: web.Request, response: web.StreamResponse, nudges: Nudges, last: StatusSnapshot
) -> None:
    """Send ``last``, then each new status, until a final one, the time cap, or a gone client."""
    await response.write(last.event())
    if last.is_final:
        return
    sessionmaker, stopping = request.app[SESSIONMAKER], request.app[STOPPING]
    loop = asyncio.get_running_loop()
    now = loop.time()
    end_at = now + MAX_STREAM_SECONDS
    next_recheck, next_keepalive = now + RECHECK_SECONDS, now + KEEPALIVE_SECONDS
    while not stopping.is_set() and _connected(request):
        now = loop.time()
        if now >= end_at:
            log.info("live.time_cap_reached")
            return
        wake = min(next_recheck, next_keepalive, end_at, now + _TICK_SECONDS)
        nudged = await nudges.wait(wake - now)
        now = loop.time()
        if nudged or now >= next_recheck:
            next_recheck = now + RECHECK_SECONDS
            current = await read_status(sessionmaker, last.order_id)
            if current is None:  # removed while watched: nothing more will ever be announced
                return
            if current.status != last.status:
                await response.write(current.event())
                last = current
                if last.is_final:
                    return
        if now >= next_keepalive:
            await response.write(_KEEPALIVE)
            next_keepalive = now + KEEPALIVE_SECONDS


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def _end_quietly(response: web.StreamResponse) -> None:
    try:
        await response.write_eof()
    except ConnectionResetError:
        pass
