"""The sandbox payment provider and SMTP sink, over real sockets on 127.0.0.1.

A small receiver app plays the gateway: it checks each webhook's signature the way the gateway
does and records the events. Waits poll a condition with a deadline; nothing sleeps to sync.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest
import pytest_asyncio
from aiohttp import web

from providers.webhook_signature import HEADER, SignatureError, verify
from sandbox import mail, psp
from tests.support.polling import eventually
from tests.support.serving import bound_socket, serving

SECRET = "test-webhook-secret"
DEADLINE_SECONDS = 5.0


async def soon(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Wait for ``probe`` with the short deadline an in-process provider deserves."""
    return await eventually(probe, timeout=DEADLINE_SECONDS, interval=0.02, what=what)


class Gateway:
    """Stands in for the gateway's webhook endpoint."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.attempts: Counter[str] = Counter()
        self.bad_signatures = 0
        self.content_types: set[str] = set()
        self.fail_next = 0  # answer this many deliveries with 500 first

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(SECRET, body, request.headers.get(HEADER))
        except SignatureError:
            self.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=400)
        self.content_types.add(request.content_type)
        event = json.loads(body)
        self.attempts[event["id"]] += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "try later"}, status=500)
        self.events.append(event)
        return web.json_response({"received": True})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/payments/webhook", self.webhook)
        return app

    def for_payment(self, payment_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["data"]["payment_id"] == payment_id]

    async def received(self, payment_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Wait until a webhook (of type ``kind``) for ``payment_id`` arrived; return those."""

        async def probe() -> list[dict[str, Any]]:
            return [e for e in self.for_payment(payment_id) if kind in (None, e["type"])]

        return await soon(probe, f"{kind or 'a'} webhook for {payment_id}")


class Provider:
    """A running sandbox provider, its HTTP client, and the gateway it reports to."""

    def __init__(self, url: str, http: aiohttp.ClientSession, gateway: Gateway) -> None:
        self.url = url
        self.http = http
        self.gateway = gateway

    async def call(
        self, method: str, path: str, *, json_body: Any = None, data: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Idempotency-Key": key} if key else {}
        url = path if path.startswith("http") else self.url + path
        async with self.http.request(method, url, json=json_body, data=data, headers=headers) as response:
            assert response.content_type == "application/json"
            return response.status, await response.json()

    async def pay(
        self,
        token: str | None = "pm_card_ok",
        *,
        key: str | None = None,
        amount_cents: int = 1999,
        order_id: str | None = None,
    ) -> dict[str, Any]:
        body = payment_body(token, amount_cents=amount_cents, order_id=order_id)
        status, payment = await self.call("POST", "/v1/payments", json_body=body, key=key or uuid.uuid4().hex)
        assert status == 201, payment
        return payment

    async def events_at_provider(self, payment_id: str) -> list[dict[str, Any]]:
        status, body = await self.call("GET", f"/v1/events?payment_id={payment_id}")
        assert status == 200
        return body["data"]


def payment_body(
    token: str | None = "pm_card_ok", *, amount_cents: int = 1999, order_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount_cents": amount_cents,
        "currency": "USD",
        "metadata": {"order_id": order_id or f"ord_{uuid.uuid4().hex[:8]}"},
    }
    if token is None:
        body["method"] = "redirect"
    else:
        body.update(method="token", token=token)
    return body


@contextlib.asynccontextmanager
async def provider_running(start_gateway: bool = True) -> AsyncIterator[tuple[Provider, Callable]]:
    gateway = Gateway()
    gateway_sock, psp_sock = bound_socket(), bound_socket()
    gateway_port = gateway_sock.getsockname()[1]
    psp_url = f"http://127.0.0.1:{psp_sock.getsockname()[1]}"
    app = psp.create_app(
        webhook_url=f"http://127.0.0.1:{gateway_port}/payments/webhook",
        webhook_secret=SECRET,
        public_url=psp_url,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
    )
    async with contextlib.AsyncExitStack() as stack:

        async def start_gateway_now() -> None:
            await stack.enter_async_context(serving(gateway.app(), gateway_sock))

        if start_gateway:
            await start_gateway_now()
        await stack.enter_async_context(serving(app, psp_sock))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Provider(psp_url, http, gateway), start_gateway_now
    gateway_sock.close()


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[Provider]:
    async with provider_running() as (running, _):
        yield running


# -- token payments -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_ok_token_succeeds_with_one_signed_webhook(provider: Provider) -> None:
    payment = await provider.pay("pm_card_ok", order_id="ord_ok", amount_cents=2500)

    assert payment["id"].startswith("pay_")
    assert payment["status"] == "succeeded"
    assert payment["metadata"] == {"order_id": "ord_ok"}
    assert "checkout_url" not in payment
    events = await provider.gateway.received(payment["id"])
    assert len(events) == 1
    event = events[0]
    assert event["id"].startswith("evt_")
    assert event["type"] == "payment.succeeded"
    assert isinstance(event["created"], int)
    assert event["data"] == {
        "payment_id": payment["id"],
        "amount_cents": 2500,
        "currency": "USD",
        "metadata": {"order_id": "ord_ok"},
    }
    assert provider.gateway.bad_signatures == 0
    assert provider.gateway.content_types == {"application/json"}


@pytest.mark.asyncio
async def test_declined_token_fails_with_failed_webhook(provider: Provider) -> None:
    payment = await provider.pay("pm_card_declined", order_id="ord_declined")

    assert payment["status"] == "failed"
    events = await provider.gateway.received(payment["id"])
    assert [e["type"] for e in events] == ["payment.failed"]
    assert events[0]["data"]["metadata"]["order_id"] == "ord_declined"


@pytest.mark.asyncio
async def test_no_response_token_stays_pending_without_webhook(provider: Provider) -> None:
    silent = await provider.pay("pm_card_no_response")
    # A later payment's webhook arriving shows deliveries are flowing past the silent one.
    later = await provider.pay("pm_card_ok")
    await provider.gateway.received(later["id"])

    assert silent["status"] == "pending"
    assert provider.gateway.for_payment(silent["id"]) == []
    assert await provider.events_at_provider(silent["id"]) == []
    status, current = await provider.call("GET", f"/v1/payments/{silent['id']}")
    assert (status, current["status"]) == (200, "pending")


@pytest.mark.asyncio
async def test_unknown_token_is_refused(provider: Provider) -> None:
    status, body = await provider.call(
        "POST", "/v1/payments", json_body=payment_body("pm_nope"), key="k-unknown-token"
    )
    assert (status, body["error"]["code"]) == (400, "invalid_token")


# -- idempotency --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_same_key_same_body_returns_the_same_payment_once(provider: Provider) -> None:
    body = payment_body("pm_card_ok", order_id="ord_idem")
    first_status, first = await provider.call("POST", "/v1/payments", json_body=body, key="k-idem")
    again_status, again = await provider.call("POST", "/v1/payments", json_body=body, key="k-idem")

    assert (first_status, again_status) == (201, 200)
    assert again["id"] == first["id"]
    assert again["status"] == "succeeded"
    status, listed = await provider.call("GET", "/v1/payments?order_id=ord_idem")
    assert status == 200
    assert [p["id"] for p in listed["data"]] == [first["id"]]
    await provider.gateway.received(first["id"])
    assert len(await provider.events_at_provider(first["id"])) == 1


@pytest.mark.asyncio
async def test_same_key_different_body_is_422(provider: Provider) -> None:
    await provider.pay("pm_card_ok", key="k-reused", amount_cents=100, order_id="ord_a")
    status, body = await provider.call(
        "POST",
        "/v1/payments",
        key="k-reused",
        json_body=payment_body("pm_card_ok", amount_cents=200, order_id="ord_a"),
    )
    assert (status, body["error"]["code"]) == (422, "idempotency_key_reused")


@pytest.mark.asyncio
async def test_missing_idempotency_key_is_400(provider: Provider) -> None:
    status, body = await provider.call("POST", "/v1/payments", json_body=payment_body())
    assert (status, body["error"]["code"]) == (400, "missing_idempotency_key")
    status, body = await provider.call("POST", "/v1/refunds", json_body={"payment_id": "pay_x"})
    assert (status, body["error"]["code"]) == (400, "missing_idempotency_key")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "raw, code",
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "invalid_request"),
        (json.dumps({**payment_body(), "amount_cents": True}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "amount_cents": 0}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "amount_cents": 1.5}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "amount_cents": "100"}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "currency": 840}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "method": "cash"}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "token": None}).encode(), "invalid_request"),
        (json.dumps({**payment_body(None), "token": "pm_card_ok"}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "metadata": {}}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "metadata": {"order_id": 7}}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "metadata": {"order_id": "o", "x": {}}}).encode(), "invalid_request"),
        (json.dumps({**payment_body(), "metadata": []}).encode(), "invalid_request"),
    ],
)
async def test_bad_payment_input_is_a_json_400(provider: Provider, raw: bytes, code: str) -> None:
    status, body = await provider.call("POST", "/v1/payments", data=raw, key=uuid.uuid4().hex)
    assert (status, body["error"]["code"]) == (400, code)


@pytest.mark.asyncio
async def test_unknown_route_and_method_answer_json(provider: Provider) -> None:
    status, body = await provider.call("GET", "/v1/nothing")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await provider.call("DELETE", "/v1/payments")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    status, body = await provider.call("GET", "/v1/payments/pay_missing")
    assert (status, body["error"]["code"]) == (404, "payment_not_found")


# -- redirect payments --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_redirect_approve_succeeds_once(provider: Provider) -> None:
    payment = await provider.pay(None, order_id="ord_redirect")
    assert payment["status"] == "pending"
    assert payment["checkout_url"] == f"{provider.url}/checkout/{payment['id']}"

    status, approved = await provider.call("POST", payment["checkout_url"] + "/approve")
    assert (status, approved["status"]) == (200, "succeeded")
    events = await provider.gateway.received(payment["id"])
    assert events[0]["type"] == "payment.succeeded"
    assert events[0]["data"]["metadata"]["order_id"] == "ord_redirect"

    # Approving again is answered idempotently and sends nothing new.
    status, again = await provider.call("POST", f"/v1/payments/{payment['id']}/approve")
    assert (status, again["status"]) == (200, "succeeded")
    assert len(await provider.events_at_provider(payment["id"])) == 1
    status, body = await provider.call("POST", payment["checkout_url"] + "/decline")
    assert (status, body["error"]["code"]) == (409, "already_decided")


@pytest.mark.asyncio
async def test_redirect_decline_fails(provider: Provider) -> None:
    payment = await provider.pay(None)
    status, declined = await provider.call("POST", f"/v1/payments/{payment['id']}/decline")
    assert (status, declined["status"]) == (200, "failed")
    events = await provider.gateway.received(payment["id"])
    assert [e["type"] for e in events] == ["payment.failed"]

    status, body = await provider.call("POST", payment["checkout_url"] + "/approve")
    assert (status, body["error"]["code"]) == (409, "already_decided")


@pytest.mark.asyncio
async def test_checkout_page_offers_both_outcomes(provider: Provider) -> None:
    payment = await provider.pay(None)
    async with provider.http.get(payment["checkout_url"]) as response:
        page = await response.text()
    assert response.status == 200
    assert f"/checkout/{payment['id']}/approve" in page
    assert f"/checkout/{payment['id']}/decline" in page


@pytest.mark.asyncio
async def test_webhook_delay_records_success_at_once_and_notifies_later(provider: Provider) -> None:
    payment = await provider.pay(None)
    started = time.monotonic()
    status, approved = await provider.call("POST", payment["checkout_url"] + "/approve?webhook_delay_s=0.5")

    assert (status, approved["status"]) == (200, "succeeded")
    status, current = await provider.call("GET", f"/v1/payments/{payment['id']}")
    assert current["status"] == "succeeded"
    assert provider.gateway.for_payment(payment["id"]) == []
    await provider.gateway.received(payment["id"])
    assert time.monotonic() - started >= 0.45


@pytest.mark.asyncio
@pytest.mark.parametrize("delay", ["abc", "-1", "nan", "inf", "1e9"])
async def test_bad_webhook_delay_is_400(provider: Provider, delay: str) -> None:
    payment = await provider.pay(None)
    status, body = await provider.call("POST", f"{payment['checkout_url']}/approve?webhook_delay_s={delay}")
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    _, current = await provider.call("GET", f"/v1/payments/{payment['id']}")
    assert current["status"] == "pending"


# -- cancel -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cancel_pending_then_approve_is_refused(provider: Provider) -> None:
    payment = await provider.pay(None)
    for _ in range(2):  # cancelling twice is fine
        status, cancelled = await provider.call("POST", f"/v1/payments/{payment['id']}/cancel")
        assert (status, cancelled["status"]) == (200, "cancelled")

    status, body = await provider.call("POST", payment["checkout_url"] + "/approve")
    assert (status, body["error"]["code"]) == (409, "payment_cancelled")
    assert await provider.events_at_provider(payment["id"]) == []


@pytest.mark.asyncio
async def test_cancel_of_succeeded_payment_is_409(provider: Provider) -> None:
    payment = await provider.pay("pm_card_ok")
    status, body = await provider.call("POST", f"/v1/payments/{payment['id']}/cancel")
    assert (status, body["error"]["code"]) == (409, "already_succeeded")
    _, current = await provider.call("GET", f"/v1/payments/{payment['id']}")
    assert current["status"] == "succeeded"


@pytest.mark.asyncio
async def test_cancel_of_unknown_payment_is_404(provider: Provider) -> None:
    status, body = await provider.call("POST", "/v1/payments/pay_nope/cancel")
    assert (status, body["error"]["code"]) == (404, "payment_not_found")


# -- refunds ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_refund_is_idempotent_and_a_second_refund_is_refused(provider: Provider) -> None:
    payment = await provider.pay("pm_card_ok", amount_cents=1500, order_id="ord_refund")
    body = {"payment_id": payment["id"]}

    status, refund = await provider.call("POST", "/v1/refunds", json_body=body, key="r-1")
    assert status == 201
    assert refund["id"].startswith("re_")
    assert refund["payment_id"] == payment["id"]
    assert (refund["amount_cents"], refund["status"]) == (1500, "succeeded")
    status, again = await provider.call("POST", "/v1/refunds", json_body=body, key="r-1")
    assert (status, again["id"]) == (200, refund["id"])
    status, refused = await provider.call("POST", "/v1/refunds", json_body=body, key="r-2")
    assert (status, refused["error"]["code"]) == (409, "already_refunded")

    status, listed = await provider.call("GET", f"/v1/refunds?payment_id={payment['id']}")
    assert [r["id"] for r in listed["data"]] == [refund["id"]]
    refunds = await provider.gateway.received(payment["id"], "refund.succeeded")
    assert refunds[0]["data"] == {
        "payment_id": payment["id"],
        "refund_id": refund["id"],
        "amount_cents": 1500,
        "currency": "USD",
        "metadata": {"order_id": "ord_refund"},
    }


@pytest.mark.asyncio
async def test_partial_refunds_up_to_the_amount(provider: Provider) -> None:
    payment = await provider.pay("pm_card_ok", amount_cents=1000)
    status, _ = await provider.call(
        "POST", "/v1/refunds", key="p-1", json_body={"payment_id": payment["id"], "amount_cents": 400}
    )
    assert status == 201
    status, body = await provider.call(
        "POST", "/v1/refunds", key="p-2", json_body={"payment_id": payment["id"], "amount_cents": 700}
    )
    assert (status, body["error"]["code"]) == (400, "amount_too_large")
    status, rest = await provider.call(
        "POST", "/v1/refunds", key="p-3", json_body={"payment_id": payment["id"]}
    )
    assert (status, rest["amount_cents"]) == (201, 600)
    _, current = await provider.call("GET", f"/v1/payments/{payment['id']}")
    assert current["amount_refunded_cents"] == 1000


@pytest.mark.asyncio
@pytest.mark.parametrize("token", [None, "pm_card_declined", "pm_card_no_response"])
async def test_only_succeeded_payments_are_refundable(provider: Provider, token: str | None) -> None:
    payment = await provider.pay(token)
    status, body = await provider.call(
        "POST", "/v1/refunds", key=uuid.uuid4().hex, json_body={"payment_id": payment["id"]}
    )
    assert (status, body["error"]["code"]) == (409, "not_refundable")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"payment_id": "pay_missing"}, 404, "payment_not_found"),
        ({}, 400, "invalid_request"),
        ({"payment_id": 12}, 400, "invalid_request"),
        ({"payment_id": "pay_x", "amount_cents": -5}, 400, "invalid_request"),
    ],
)
async def test_bad_refund_input(provider: Provider, body: dict, status: int, code: str) -> None:
    got_status, got = await provider.call("POST", "/v1/refunds", json_body=body, key=uuid.uuid4().hex)
    assert (got_status, got["error"]["code"]) == (status, code)


# -- webhook delivery ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_webhook_is_retried_with_the_same_event_id(provider: Provider) -> None:
    provider.gateway.fail_next = 2
    payment = await provider.pay("pm_card_ok")

    events = await provider.gateway.received(payment["id"])
    assert len(events) == 1
    assert provider.gateway.attempts == Counter({events[0]["id"]: 3})
    [at_provider] = await provider.events_at_provider(payment["id"])
    assert at_provider["id"] == events[0]["id"]
    assert at_provider["delivery"]["attempts"] == 3
    assert at_provider["delivery"]["delivered"] is True


@pytest.mark.asyncio
async def test_webhook_waits_out_a_receiver_that_is_down() -> None:
    async with provider_running(start_gateway=False) as (running, start_gateway):
        payment = await running.pay("pm_card_declined")

        async def refused_twice() -> bool:
            [event] = await running.events_at_provider(payment["id"])
            return event["delivery"]["attempts"] >= 2 and not event["delivery"]["delivered"]

        await soon(refused_twice, "refused attempts")
        await start_gateway()
        events = await running.gateway.received(payment["id"])
        assert [e["type"] for e in events] == ["payment.failed"]


# -- mail sink ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_mail_sink_keeps_and_lists_messages(tmp_path: Path) -> None:
    directory = tmp_path / "mail"  # missing on purpose: the sink creates it
    app = mail.create_app(directory=directory, smtp_port=0)
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with serving(app, sock), aiohttp.ClientSession() as http:
        message = EmailMessage()
        message["From"] = "orders@example.com"
        message["To"] = "alice@example.com"
        message["Subject"] = "Your order ord_1 is placed"
        message.set_content("Thank you for your order.\n")
        await aiosmtplib.send(
            message,
            hostname="127.0.0.1",
            port=app[mail.SINK].port,
            recipients=["alice@example.com", "audit@example.com"],
        )

        files = list(directory.glob("*.eml"))
        assert len(files) == 1
        assert b"Your order ord_1 is placed" in files[0].read_bytes()
        async with http.get(url + "/messages") as response:
            assert response.status == 200
            listed = await response.json()
        assert len(listed) == 1
        got = listed[0]
        assert got["id"] == files[0].stem
        assert got["from"] == "orders@example.com"
        assert got["to"] == ["alice@example.com", "audit@example.com"]
        assert got["subject"] == "Your order ord_1 is placed"
        assert got["text"] == "Thank you for your order.\n"
        assert got["received_at"].endswith("Z")

        async with http.get(url + "/messages", params={"to": "bob@example.com"}) as response:
            assert await response.json() == []
        async with http.delete(url + "/messages") as response:
            assert (await response.json()) == {"deleted": 1}
        async with http.get(url + "/messages") as response:
            assert await response.json() == []
        assert list(directory.glob("*.eml")) == []


# -- console entries ----------------------------------------------------------------------------


@pytest.mark.parametrize("entry, variable", [(psp.main, "PSP_PORT"), (mail.main, "SMTP_PORT")])
def test_entry_points_exit_2_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    entry: Callable[[], None],
    variable: str,
) -> None:
    monkeypatch.setenv(variable, "not-a-port")
    with pytest.raises(SystemExit) as exited:
        entry()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {variable}:")
    assert err.count("\n") == 1
