"""Random interleavings of one order's steps, duplicates included, against the real database.

Hypothesis drives a single order through any sequence of step deliveries (reserve, pay, the
customer paying or declining at the provider, payment webhooks delivered once or twice, expiry
early or due, customer and admin cancels, void and refund follow-ups, refund webhooks) and
checks the invariants after every step: stock conserved, no oversell, at most one charge and one
refund at the provider, and a state that agrees with itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from aiohttp import web
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from actors.cancel import cancel_order
from actors.expire import expire_hold
from actors.pay import request_payment
from actors.refund import refund_payment
from actors.reserve import reserve_stock
from actors.settle import settle_payment
from actors.void import void_payment
from models.invariants import invariant_violations
from models.tables import OutboxMessage, WebhookEvent
from sandbox.psp import create_app as create_psp_app
from tests.support.factories import (
    available,
    load_order,
    make_account,
    make_item,
    make_order,
)
from tests.support.fleet import free_port
from tests.support.scenarios import make_hold_due, provider
from workers.runtime import build_runtime

STOCK = 3


class World:
    """One event loop with a worker runtime and the sandbox provider, shared by all examples."""

    def __init__(self, settings):
        self.loop = asyncio.new_event_loop()
        port = free_port()
        self.psp_url = f"http://127.0.0.1:{port}"
        self.runner = web.AppRunner(
            create_psp_app(
                webhook_url="http://127.0.0.1:9/payments/webhook",
                webhook_secret="test-secret",
                public_url=self.psp_url,
                retry_base_seconds=30,
                retry_max_seconds=30,
            )
        )
        self.run(self.runner.setup())
        self.run(web.TCPSite(self.runner, "127.0.0.1", port).start())
        broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=[])
        self.runtime = build_runtime(
            dataclasses.replace(settings, psp_url=self.psp_url, hold_seconds=60), broker
        )

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def close(self):
        self.run(self.runtime.close())
        self.run(self.runner.cleanup())
        self.loop.close()


class OneOrder(RuleBasedStateMachine):
    world: World

    def __init__(self):
        super().__init__()
        runtime = self.world.runtime
        self.sessionmaker = runtime.sessionmaker
        self.sku = self.world.run(make_item(self.sessionmaker, stock=STOCK))
        account = self.world.run(make_account(self.sessionmaker))
        self.quantity = 2
        self.order_id = self.world.run(
            make_order(self.sessionmaker, account, {self.sku: self.quantity}, token="pm_card_no_response")
        )
        self.events: list[str] = []

    # --- helpers -------------------------------------------------------------------------------

    def run(self, coroutine):
        return self.world.run(coroutine)

    def order(self):
        return self.run(load_order(self.sessionmaker, self.order_id))

    def provider_payment(self) -> dict | None:
        payment_id = self.order().payment.provider_payment_id
        if payment_id is None:
            return None
        _, body = self.run(provider(self.world.psp_url, "GET", f"/v1/payments/{payment_id}"))
        return body

    def webhook(self, event_type: str, **data) -> str:
        order = self.order()
        event_id = f"evt_{uuid.uuid4().hex}"

        async def record():
            async with self.sessionmaker() as session, session.begin():
                session.add(
                    WebhookEvent(
                        id=event_id,
                        type=event_type,
                        payload={
                            "id": event_id,
                            "type": event_type,
                            "data": {
                                "payment_id": order.payment.provider_payment_id,
                                "metadata": {"order_id": self.order_id, "payment_id": order.payment.id},
                                **data,
                            },
                        },
                    )
                )

        self.run(record())
        self.events.append(event_id)
        return event_id

    # --- where the order starts: every stage is reached often, not only by luck -----------------

    @initialize(stage=st.sampled_from(["pending", "awaiting_payment", "paid_at_provider", "placed"]))
    def start_at(self, stage):
        if stage == "pending":
            return
        self.reserve()
        self.pay()
        if stage in ("paid_at_provider", "placed"):
            self.customer_decides_at_the_provider("approve")
        if stage == "placed":
            self.provider_reports_the_outcome()
            assert self.order().status == "PLACED"

    # --- the steps, in any order ---------------------------------------------------------------

    @rule()
    def reserve(self):
        self.run(reserve_stock(self.world.runtime, self.order_id))

    @rule()
    def pay(self):
        self.run(request_payment(self.world.runtime, self.order_id))

    @rule(decision=st.sampled_from(["approve", "decline"]))
    def customer_decides_at_the_provider(self, decision):
        payment = self.provider_payment()
        if payment is not None and payment["status"] == "pending":
            self.run(provider(self.world.psp_url, "POST", f"/checkout/{payment['id']}/{decision}"))

    @rule()
    def provider_reports_the_outcome(self):
        payment = self.provider_payment()
        if payment is not None and payment["status"] in ("succeeded", "failed"):
            event = self.webhook(f"payment.{payment['status']}")
            self.run(settle_payment(self.world.runtime, event, self.order_id))

    @precondition(lambda self: self.events)
    @rule()
    def a_webhook_is_delivered_again(self):
        self.run(settle_payment(self.world.runtime, self.events[-1], self.order_id))

    @rule(due=st.booleans())
    def expire(self, due):
        if due:
            self.run(make_hold_due(self.sessionmaker, self.order_id))
        self.run(expire_hold(self.world.runtime, self.order_id))

    @rule(reason=st.sampled_from(["customer_cancelled", "admin_cancelled"]))
    def cancel(self, reason):
        self.run(cancel_order(self.world.runtime, self.order_id, reason))

    @rule(times=st.integers(1, 2))
    def follow_ups_run(self, times):
        async def messages():
            async with self.sessionmaker() as session:
                return (
                    await session.scalars(
                        select(OutboxMessage).where(
                            OutboxMessage.order_id == self.order_id,
                            OutboxMessage.actor_name.in_(["void", "refund"]),
                        )
                    )
                ).all()

        for message in self.run(messages()):
            step = void_payment if message.actor_name == "void" else refund_payment
            for _ in range(times):
                self.run(step(self.world.runtime, **message.kwargs))

    @rule()
    def provider_reports_the_refund(self):
        payment = self.provider_payment()
        if payment is None:
            return
        _, refunds = self.run(provider(self.world.psp_url, "GET", "/v1/refunds", payment_id=payment["id"]))
        if refunds["data"]:
            event = self.webhook("refund.succeeded", refund_id=refunds["data"][0]["id"])
            self.run(settle_payment(self.world.runtime, event, self.order_id))

    # --- what must hold after every step --------------------------------------------------------

    @invariant()
    def stock_is_conserved(self):
        async def check():
            async with self.sessionmaker() as session:
                return [
                    line
                    for line in await invariant_violations(session)
                    if self.sku in line or self.order_id in line
                ]

        assert self.run(check()) == []
        assert 0 <= self.run(available(self.sessionmaker, self.sku)) <= STOCK

    @invariant()
    def at_most_one_charge_and_one_refund_at_the_provider(self):
        _, payments = self.run(provider(self.world.psp_url, "GET", "/v1/payments", order_id=self.order_id))
        assert len(payments["data"]) <= 1
        for payment in payments["data"]:
            _, refunds = self.run(
                provider(self.world.psp_url, "GET", "/v1/refunds", payment_id=payment["id"])
            )
            assert len(refunds["data"]) <= 1

    @invariant()
    def the_order_agrees_with_its_holds_and_payment(self):
        order = self.order()
        states = {hold.state for hold in order.holds}
        held = sum(h.quantity for h in order.holds if h.state == "HELD")
        committed = sum(h.quantity for h in order.holds if h.state == "COMMITTED")
        if order.status == "AWAITING_PAYMENT":
            assert held == self.quantity and committed == 0
        elif order.status == "PLACED":
            assert committed == self.quantity and held == 0 and order.payment.status == "SUCCEEDED"
        else:
            assert "HELD" not in states and (order.status != "CANCELLED" or committed == 0)
        if order.status in ("CANCELLED", "REJECTED"):
            assert order.payment.status != "SUCCEEDED"  # a charged, cancelled order is being refunded


@pytest.fixture(scope="module")
def world(settings):
    world = World(settings)
    yield world
    world.close()


def test_any_interleaving_of_one_orders_steps_keeps_the_invariants(world):
    OneOrder.world = world
    run_state_machine_as_test(
        OneOrder,
        settings=hypothesis_settings(
            max_examples=40,
            stateful_step_count=14,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
