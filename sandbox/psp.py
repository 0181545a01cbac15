"""The sandbox payment provider: a dev and test stand-in for a real one, shaped like Stripe.

Run it with the ``psp`` console script (``main``). Endpoints, all JSON:

- ``POST /v1/payments`` (``Idempotency-Key`` required) creates a payment. ``method: token`` is
  decided at once by the test token (``pm_card_ok`` succeeds, ``pm_card_declined`` fails,
  ``pm_card_no_response`` stays pending for good); ``method: redirect`` waits for the customer.
- ``POST /checkout/{id}/approve|decline`` (aliases ``/v1/payments/{id}/approve|decline``) is the
  customer finishing a pending payment (either method). ``?webhook_delay_s=N`` records the outcome
  at once but delivers its webhook N seconds later. Repeating the same outcome answers 200 and
  sends no second webhook; the opposite outcome answers 409 ``already_decided``; a cancelled
  payment answers 409 ``payment_cancelled``.
- ``POST /v1/payments/{id}/cancel``: pending -> cancelled (again: 200); 409 ``already_succeeded``
  or ``already_failed`` once decided.
- ``POST /v1/refunds`` (``Idempotency-Key`` required) ``{payment_id, amount_cents?}`` refunds a
  succeeded payment (default: all that is left); 409 ``not_refundable`` / ``already_refunded``.
- ``GET /v1/payments/{id}``, ``GET /v1/payments?order_id=``, ``GET /v1/refunds/{id}``,
  ``GET /v1/refunds?payment_id=``, ``GET /v1/events?payment_id=`` (with delivery state) let
  tests and chaos checks count what happened at the provider; lists are ``{"data": [...]}``.

A repeated ``Idempotency-Key`` with the same body answers 200 with the object's current state
(header ``Idempotent-Replayed: true``); with another body 422 ``idempotency_key_reused``.
Errors are ``{"error": {"code": ..., "message": ...}}`` with a 4xx status.
Outcomes reach ``webhook_url`` as webhooks signed with ``PSP-Signature``, retried until
acknowledged (psp_webhooks).

A second face, Stripe's (sandbox/stripe_face), answers under ``/stripe`` as Stripe's REST API
does for the ``stripe`` SDK (``base_addresses={"api": f"{psp_url}/stripe"}``): ``Bearer
sk_test_...`` auth, form-encoded parameters, PaymentIntents (``POST /stripe/v1/payment_intents``
with ``confirm``, ``GET .../{id}``, ``POST .../{id}/confirm``, ``.../{id}/cancel``) and Refunds
(``POST /stripe/v1/refunds``, ``GET .../{id}``), Stripe's error objects and idempotency (the
first response replayed as it was). Test PaymentMethods: ``pm_card_ok``/``pm_card_visa``
succeed, ``pm_card_declined``/``pm_card_chargeDeclined`` answer 402 ``card_declined``,
``pm_card_no_response`` stays ``requires_action``; ``payment_method_data[type]`` (with
``return_url``) redirects the customer to ``/checkout/{pi_id}``. Both faces share the books:
the checkout page, ``?webhook_delay_s=`` and the native listings (``GET /v1/payments``,
``/v1/refunds``, ``/v1/events``) cover PaymentIntents and their refunds too, and a PaymentIntent's
events reach the same ``webhook_url`` as Stripe events (``payment_intent.succeeded``,
``payment_intent.payment_failed``, ``payment_intent.canceled``, ``refund.created``) signed with
``Stripe-Signature`` and ``stripe_webhook_secret``, under the id the event has in ``/v1/events``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from sandbox import _entry
from sandbox.psp_faces import LEDGER, RENDERERS, WEBHOOKS, Origin, Render, send_events
from sandbox.psp_ledger import NATIVE, Ledger, ProviderError
from sandbox.psp_webhooks import Delivery, Webhook, WebhookSender, native_webhook
from sandbox.stripe_face import routes as stripe_face

log = structlog.get_logger()

MAX_AMOUNT_CENTS = 10**12
MAX_WEBHOOK_DELAY_SECONDS = 86_400
MAX_METADATA_KEYS = 50
MAX_TEXT = 500

_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


# -- input validation ---------------------------------------------------------------------------


def _invalid(message: str) -> ProviderError:
    return ProviderError(400, "invalid_request", message)


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise ProviderError(400, "missing_idempotency_key", "the Idempotency-Key header is required")
    if len(key) > 255:
        raise _invalid("Idempotency-Key must be at most 255 characters")
    return key


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProviderError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    return body


def _fingerprint(request: web.Request, body: dict[str, Any]) -> str:
    # The path is part of it so one key cannot stand for a payment and a refund at once.
    return request.path + " " + json.dumps(body, sort_keys=True, separators=(",", ":"))


def _amount(value: Any, name: str = "amount_cents") -> int:
    # bool is an int in Python, but `true` is not an amount.
    if type(value) is not int or not 0 < value <= MAX_AMOUNT_CENTS:
        raise _invalid(f"{name} must be a whole number of cents between 1 and {MAX_AMOUNT_CENTS}")
    return value


def _text(body: dict[str, Any], name: str, label: str | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise _invalid(f"{label or name} must be a non-empty string of at most {MAX_TEXT} characters")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise _invalid("currency must be a three-letter ISO 4217 code")
    return value.upper()


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("metadata must be an object with an order_id")
    if len(value) > MAX_METADATA_KEYS:
        raise _invalid(f"metadata may have at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if len(key) > MAX_TEXT:
            raise _invalid(f"metadata keys must be at most {MAX_TEXT} characters")
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise _invalid(f"metadata.{key} must be a string, number, boolean or null")
        if isinstance(item, str) and len(item) > MAX_TEXT:
            raise _invalid(f"metadata.{key} must be at most {MAX_TEXT} characters")
    _text(value, "order_id", "metadata.order_id")
    return value


def _payment_request(body: dict[str, Any]) -> dict[str, Any]:
    method = body.get("method")
    if method not in ("token", "redirect"):
        raise _invalid('method must be "token" or "redirect"')
    token = body.get("token")
    if method == "token" and not isinstance(token, str):
        raise _invalid("token is required for method token")
    if method == "redirect" and token is not None:
        raise _invalid("token is only for method token")
    return {
        "amount_cents": _amount(body.get("amount_cents")),
        "currency": _currency(body.get("currency")),
        "method": method,
        "token": token,
        "metadata": _metadata(body.get("metadata")),
    }


def _refund_request(body: dict[str, Any]) -> dict[str, Any]:
    amount = body.get("amount_cents")
    return {
        "payment_id": _text(body, "payment_id"),
        "amount_cents": None if amount is None else _amount(amount),
        "metadata": _metadata(body.get("metadata")) if body.get("metadata") is not None else {},
    }


def _webhook_delay(request: web.Request) -> float:
    raw = request.query.get("webhook_delay_s")
    if raw is None:
        return 0.0
    try:
        delay = float(raw)
    except ValueError:
        delay = math.nan
    if not 0 <= delay <= MAX_WEBHOOK_DELAY_SECONDS:  # also false for NaN
        raise _invalid(f"webhook_delay_s must be a number of seconds from 0 to {MAX_WEBHOOK_DELAY_SECONDS}")
    return delay


# -- handlers -----------------------------------------------------------------------------------


def _replayed(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=200, headers={"Idempotent-Replayed": "true"})


async def create_payment(request: web.Request) -> web.Response:
    """``POST /v1/payments``: create (or replay) a payment."""
    key = _idempotency_key(request)
    body = await _json_object(request)
    ledger = request.app[LEDGER]
    fingerprint = _fingerprint(request, body)
    earlier = ledger.replay(key, fingerprint)
    if earlier is not None:
        payment = ledger.payment(earlier)
        log.info("psp.payment.replayed", payment_id=payment.id, order_id=payment.order_id)
        return _replayed(payment.to_json())
    payment, events = ledger.create_payment(key=key, fingerprint=fingerprint, **_payment_request(body))
    log.info(
        "psp.payment.created",
        payment_id=payment.id,
        order_id=payment.order_id,
        method=payment.method,
        status=payment.status,
        amount_cents=payment.amount_cents,
    )
    send_events(request, events)
    return web.json_response(payment.to_json(), status=201)


async def get_payment(request: web.Request) -> web.Response:
    """``GET /v1/payments/{id}``."""
    return web.json_response(request.app[LEDGER].payment(request.match_info["id"]).to_json())


async def list_payments(request: web.Request) -> web.Response:
    """``GET /v1/payments?order_id=``: payments in creation order, optionally for one order."""
    order_id = request.query.get("order_id")
    payments = [
        p.to_json()
        for p in request.app[LEDGER].payments.values()
        if order_id is None or p.order_id == order_id
    ]
    return web.json_response({"data": payments})


async def _decide(request: web.Request, outcome: str) -> web.Response:
    delay = _webhook_delay(request)
    ledger = request.app[LEDGER]
    decide = ledger.approve if outcome == "approved" else ledger.decline
    payment, events = decide(request.match_info["id"])
    log.info(
        f"psp.payment.{outcome}",
        payment_id=payment.id,
        order_id=payment.order_id,
        webhook_delay_s=delay,
        repeated=not events,
    )
    send_events(request, events, delay)
    return web.json_response(payment.to_json())


async def approve_payment(request: web.Request) -> web.Response:
    """``POST /checkout/{id}/approve``: the customer paid."""
    return await _decide(request, "approved")


async def decline_payment(request: web.Request) -> web.Response:
    """``POST /checkout/{id}/decline``: the customer's payment failed."""
    return await _decide(request, "declined")


async def cancel_payment(request: web.Request) -> web.Response:
    """``POST /v1/payments/{id}/cancel``."""
    payment, events = request.app[LEDGER].cancel(request.match_info["id"])
    log.info("psp.payment.cancelled", payment_id=payment.id, order_id=payment.order_id)
    send_events(request, events)  # none for a native payment
    return web.json_response(payment.to_json())


async def checkout_page(request: web.Request) -> web.Response:
    """``GET /checkout/{id}``: the page a customer is redirected to, with the two outcomes."""
    payment = request.app[LEDGER].payment(request.match_info["id"])
    pid = html.escape(payment.id)
    page = (
        f"<!doctype html><title>Sandbox checkout</title>"
        f"<h1>Pay {payment.amount_cents / 100:.2f} {html.escape(payment.currency)}</h1>"
        f"<p>Payment {pid}: {html.escape(payment.status)}</p>"
        f'<form method="post" action="/checkout/{pid}/approve"><button>Approve</button></form>'
        f'<form method="post" action="/checkout/{pid}/decline"><button>Decline</button></form>'
    )
    return web.Response(text=page, content_type="text/html")


async def create_refund(request: web.Request) -> web.Response:
    """``POST /v1/refunds``: refund a succeeded payment (or replay an earlier refund)."""
    key = _idempotency_key(request)
    body = await _json_object(request)
    ledger = request.app[LEDGER]
    fingerprint = _fingerprint(request, body)
    earlier = ledger.replay(key, fingerprint)
    if earlier is not None:
        return _replayed(ledger.refund(earlier).to_json())
    refund, events = ledger.create_refund(key=key, fingerprint=fingerprint, **_refund_request(body))
    log.info(
        "psp.refund.created",
        refund_id=refund.id,
        payment_id=refund.payment_id,
        order_id=ledger.payment(refund.payment_id).order_id,
        amount_cents=refund.amount_cents,
    )
    send_events(request, events)
    return web.json_response(refund.to_json(), status=201)


async def get_refund(request: web.Request) -> web.Response:
    """``GET /v1/refunds/{id}``."""
    return web.json_response(request.app[LEDGER].refund(request.match_info["id"]).to_json())


async def list_refunds(request: web.Request) -> web.Response:
    """``GET /v1/refunds?payment_id=``: refunds in creation order, optionally for one payment."""
    payment_id = request.query.get("payment_id")
    refunds = [
        r.to_json()
        for r in request.app[LEDGER].refunds.values()
        if payment_id is None or r.payment_id == payment_id
    ]
    return web.json_response({"data": refunds})


async def list_events(request: web.Request) -> web.Response:
    """``GET /v1/events?payment_id=``: webhook events with how their delivery is going."""
    payment_id = request.query.get("payment_id")
    deliveries = request.app[WEBHOOKS].deliveries
    events = [
        {**event, "delivery": deliveries.get(event["id"], Delivery()).to_json()}
        for event in request.app[LEDGER].events
        if payment_id is None or event["data"]["payment_id"] == payment_id
    ]
    return web.json_response({"data": events})


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process is up (for the dev fleet's start-up waits)."""
    return web.json_response({"status": "ok"})


# -- app ----------------------------------------------------------------------------------------


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProviderError as exc:
        log.info(
            "psp.request.refused", method=request.method, path=request.path, status=exc.status, code=exc.code
        )
        return _error(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return _error(exc.status, _HTTP_CODES.get(exc.status, "http_error"), exc.reason, allow)
    except Exception:
        log.exception("psp.request.error", method=request.method, path=request.path)
        return _error(500, "internal_error", "unexpected error in the sandbox provider")


def create_app(
    *,
    webhook_url: str,
    webhook_secret: str,
    public_url: str,
    stripe_webhook_secret: str = "",
    retry_base_seconds: float = 0.5,
    retry_max_seconds: float = 30.0,
) -> web.Application:
    """Build the provider app; it opens its HTTP session and delivery tasks only when started.

    ``webhook_url`` receives the signed events of both faces: native ones signed with
    ``webhook_secret``, Stripe ones with ``stripe_webhook_secret`` (when empty, as in a dev
    setup that pays through the native face only, ``webhook_secret`` too). ``public_url`` is
    this app's own base URL as customers reach it (for ``checkout_url``). Webhook retries wait
    ``retry_base_seconds``, doubling up to ``retry_max_seconds``.
    """
    if not 0 < retry_base_seconds <= retry_max_seconds:
        raise ValueError("need 0 < retry_base_seconds <= retry_max_seconds")
    app = web.Application(middlewares=[_errors_as_json])
    app[LEDGER] = Ledger(public_url=public_url.rstrip("/"))
    app[WEBHOOKS] = WebhookSender(
        webhook_url, retry_base_seconds=retry_base_seconds, retry_max_seconds=retry_max_seconds
    )
    app[RENDERERS] = {NATIVE: _native_renderer(webhook_secret)}
    app.cleanup_ctx.append(_webhook_sender)
    app.add_routes(
        [
            web.post("/v1/payments", create_payment),
            web.get("/v1/payments", list_payments),
            web.get("/v1/payments/{id}", get_payment),
            web.post("/v1/payments/{id}/cancel", cancel_payment),
            web.post("/v1/payments/{id}/approve", approve_payment),
            web.post("/v1/payments/{id}/decline", decline_payment),
            web.get("/checkout/{id}", checkout_page),
            web.post("/checkout/{id}/approve", approve_payment),
            web.post("/checkout/{id}/decline", decline_payment),
            web.post("/v1/refunds", create_refund),
            web.get("/v1/refunds", list_refunds),
            web.get("/v1/refunds/{id}", get_refund),
            web.get("/v1/events", list_events),
            web.get("/healthz", healthz),
        ]
    )
    stripe_face.install(app, webhook_secret=stripe_webhook_secret or webhook_secret)
    return app


def _native_renderer(secret: str) -> Render:
    def render(event: dict[str, Any], origin: Origin | None) -> Webhook:
        # Native events carry no request: the event is the ledger's own record.
        return native_webhook(event, secret)

    return render


async def _webhook_sender(app: web.Application) -> AsyncIterator[None]:
    sender = app[WEBHOOKS]
    await sender.start()
    yield
    # Undelivered events die with the process, as the sandbox keeps no state on disk.
    await sender.close()


def main() -> None:
    """Console entry ``psp``: serve the sandbox provider on 127.0.0.1:$PSP_PORT."""
    settings = _entry.start("psp")
    public_url = f"http://127.0.0.1:{settings.psp_port}"
    webhook_url = settings.gateway_url + "/payments/webhook"
    app = create_app(
        webhook_url=webhook_url,
        webhook_secret=settings.psp_webhook_secret,
        stripe_webhook_secret=settings.stripe_webhook_secret,
        public_url=public_url,
    )
    log.info("psp.starting", url=public_url, webhook_url=webhook_url)
    _entry.serve(app, settings.psp_port)


if __name__ == "__main__":
    main()
