"""The Stripe face's endpoints, as the ``stripe`` SDK calls them under ``{psp_url}/stripe``.

- ``POST /v1/payment_intents`` (``confirm``, ``payment_method`` or ``payment_method_data[type]``
  with ``return_url``), ``GET /v1/payment_intents/{id}``, ``POST /v1/payment_intents/{id}/confirm``
  and ``/cancel``;
- ``POST /v1/refunds`` (``payment_intent``, ``amount``?), ``GET /v1/refunds/{id}``.

Every request needs ``Authorization: Bearer sk_test_...`` (or ``rk_test_``) and every answer
carries ``Request-Id``. A POST with an ``Idempotency-Key`` is answered once: the same key, path
and parameters replay the first response (status and body, a decline as much as a success) with
``Idempotent-Replayed: true``; other parameters are an ``idempotency_error``. Parameters are
checked before anything is done, and a refused one is not saved under the key, as on Stripe.

Each handler reads its parameters, then runs a synchronous step against the books: with no
await between a check and the write that depends on it, one event loop means no races.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from sandbox.psp_faces import LEDGER, RENDERERS, Origin, send_events
from sandbox.psp_ledger import (
    FAILED,
    STRIPE,
    TOKEN_DECLINED,
    TOKEN_NO_RESPONSE,
    TOKEN_OK,
    Ledger,
    Payment,
    ProviderError,
)
from sandbox.stripe_face import errors, objects
from sandbox.stripe_face.errors import StripeError
from sandbox.stripe_face.forms import Params, decode
from sandbox.stripe_face.intents import Intent, StripeBooks
from sandbox.stripe_face.webhooks import renderer

log = structlog.get_logger()

PREFIX = "/stripe"
BOOKS = web.AppKey("stripe_books", StripeBooks)
REQUEST_ID = web.RequestKey("stripe_request_id", str)

# The test PaymentMethods and the ledger's test token each stands for: the sandbox's own names
# and Stripe's (pm_card_visa succeeds, pm_card_chargeDeclined is declined).
TEST_CARDS = {
    "pm_card_ok": TOKEN_OK,
    "pm_card_visa": TOKEN_OK,
    "pm_card_declined": TOKEN_DECLINED,
    "pm_card_chargeDeclined": TOKEN_DECLINED,
    "pm_card_no_response": TOKEN_NO_RESPONSE,
}
CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
MAX_AMOUNT = 99_999_999  # Stripe's: eight digits
MAX_IDEMPOTENCY_KEY = 255

_METHOD_PARAMS = ("payment_method", "payment_method_data", "payment_method_types", "return_url")
CREATE_PARAMS = ("amount", "currency", "confirm", "description", "metadata", *_METHOD_PARAMS)
CONFIRM_PARAMS = _METHOD_PARAMS
CANCEL_PARAMS = ("cancellation_reason",)
REFUND_PARAMS = ("payment_intent", "amount", "metadata")

_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


# -- reading requests ---------------------------------------------------------------------------


def _authenticate(request: web.Request) -> None:
    # Any test secret or restricted key will do: the sandbox has one account, in test mode.
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    key = credentials.strip()
    if scheme.lower() == "basic":  # curl -u sk_test_...: as in Stripe's docs
        try:
            key = base64.b64decode(key, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    elif scheme.lower() != "bearer":
        raise errors.authentication(_NO_KEY)
    if not key:
        raise errors.authentication(_NO_KEY)
    if not key.startswith(("sk_test_", "rk_test_")) or len(key) <= len("sk_test_"):
        raise errors.authentication(f"Invalid API Key provided: {_masked(key)}")


def _masked(key: str) -> str:
    # As Stripe shows a key back: its kind and last four characters only.
    if len(key) <= 12:
        return "*" * len(key)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


async def _params(request: web.Request) -> dict[str, Any]:
    """The request's decoded parameters: the form body of a POST, the query of a GET."""
    if request.method == "GET":
        return decode(request.query_string.encode())
    return decode(await request.read())


def _amount(params: Params, name: str, *, required: bool = False) -> int | None:
    amount = params.integer(name, required=required)
    if amount is not None and amount < 1:
        raise errors.invalid(
            "This value must be greater than or equal to 1.",
            code="parameter_invalid_integer",
            param=params.name(name),
        )
    if amount is not None and amount > MAX_AMOUNT:
        raise errors.invalid(
            f"Amount must be no more than {MAX_AMOUNT} in the currency's smallest unit.",
            code="amount_too_large",
            param=params.name(name),
        )
    return amount


def _currency(params: Params) -> str:
    currency = params.string("currency", required=True) or ""
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise errors.invalid(f"Invalid currency: {currency.lower()}.", param="currency")
    return currency.lower()


@dataclass(frozen=True)
class _MethodParams:
    """How the request says to pay: a test card, or a payment method that redirects."""

    payment_method: str | None
    redirect_type: str | None
    types: list[str] | None
    return_url: str | None


def _method_params(params: Params) -> _MethodParams:
    payment_method = params.string("payment_method")
    data = params.hash("payment_method_data", allowed=("type",))
    if payment_method is not None and data is not None:
        raise errors.invalid(
            "You may only specify one of these parameters: payment_method, payment_method_data.",
            code="parameters_exclusive",
            param="payment_method_data",
        )
    if payment_method is not None and payment_method not in TEST_CARDS:
        raise errors.no_such("PaymentMethod", payment_method, "payment_method", status=400)
    redirect_type = data.string("type", required=True) if data is not None else None
    if redirect_type == "card":
        raise errors.invalid(
            "The sandbox takes cards only as test PaymentMethods: pass payment_method "
            f"(one of {', '.join(TEST_CARDS)}) instead of payment_method_data.",
            param="payment_method_data[type]",
        )
    return_url = params.string("return_url")
    if return_url is not None and urllib.parse.urlsplit(return_url).scheme not in ("http", "https"):
        raise errors.invalid("Not a valid URL", code="url_invalid", param="return_url")
    return _MethodParams(
        payment_method, redirect_type, params.string_list("payment_method_types"), return_url
    )


@dataclass(frozen=True)
class _Choice:
    """The payment method a PaymentIntent is to have, and the types it allows."""

    payment_method: str | None
    redirect_type: str | None
    types: list[str]


def _choose(given: _MethodParams, intent: Intent | None, *, confirming: bool) -> _Choice:
    """The payment method ``given`` sets on ``intent`` (a new one when None), or Stripe's error.

    Without one in the request, confirming uses the one the PaymentIntent already has.
    """
    payment_method, redirect_type = given.payment_method, given.redirect_type
    if redirect_type is not None:
        payment_method = f"pm_{secrets.token_hex(12)}"  # Stripe makes one from payment_method_data
    elif payment_method is None and intent is not None:
        payment_method, redirect_type = intent.payment_method, intent.redirect_type
    kind = redirect_type or "card"
    if given.types is not None:
        types = given.types
    elif intent is not None:
        types = intent.payment_method_types
    else:
        types = [kind]
    if payment_method is not None and kind not in types:
        raise errors.invalid(
            f"The PaymentMethod provided ({kind}) is not allowed for this PaymentIntent. Please "
            f"attach a PaymentMethod of one of the following types: {', '.join(types)}. "
            "Alternatively, update the allowed payment_method_types for this PaymentIntent to "
            f'include "{kind}".',
            code="payment_intent_incompatible_payment_method",
            param="payment_method",
        )
    if confirming and payment_method is None:
        raise errors.invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. Confirm it "
            "with a payment_method or payment_method_data.",
            code="payment_intent_unexpected_state",
            param="payment_method",
        )
    if confirming and redirect_type is not None and given.return_url is None:
        raise errors.invalid(
            f"You must provide a return_url when confirming a PaymentIntent with a {redirect_type} "
            "payment method: the customer is sent back there after authorizing the payment.",
            code="parameter_missing",
            param="return_url",
        )
    if not confirming and given.return_url is not None:
        raise errors.invalid("return_url can only be passed when confirm is true.", param="return_url")
    return _Choice(payment_method, redirect_type, types)


# -- the steps ----------------------------------------------------------------------------------


def _books(request: web.Request) -> tuple[Ledger, StripeBooks]:
    return request.config_dict[LEDGER], request.config_dict[BOOKS]


def _origin(request: web.Request) -> Origin:
    return Origin(request[REQUEST_ID], request.headers.get("Idempotency-Key"))


def _find_intent(request: web.Request) -> tuple[Payment, Intent]:
    """The PaymentIntent in the URL, or 404: a payment of the native face is none."""
    ledger, books = _books(request)
    payment_id = request.match_info["id"]
    payment, intent = ledger.payments.get(payment_id), books.intents.get(payment_id)
    if payment is None or intent is None:
        raise errors.no_such("payment_intent", payment_id, "intent")
    return payment, intent


def _intent_json(request: web.Request, payment: Payment) -> dict[str, Any]:
    ledger, books = _books(request)
    return objects.payment_intent_of(ledger, books, payment)


def _log(request: web.Request, what: str, payment: Payment, **fields: Any) -> None:
    status = objects.intent_status(payment, _books(request)[1].intents[payment.id])
    log.info(
        f"psp.{what}",
        face=STRIPE,
        payment_id=payment.id,
        order_id=payment.order_id,
        status=status,
        request_id=request[REQUEST_ID],
        **fields,
    )


def _confirm(
    request: web.Request, payment: Payment, intent: Intent, choice: _Choice, return_url: str | None
) -> dict[str, Any]:
    """Confirm ``intent`` with the payment method ``choice`` gives it: a test card is decided at
    once, a redirect waits for the customer at the checkout page; a decline is a 402."""
    intent.payment_method, intent.redirect_type = choice.payment_method, choice.redirect_type
    intent.payment_method_types = choice.types
    intent.return_url = return_url
    if choice.redirect_type is None:
        method, token = "token", TEST_CARDS.get(choice.payment_method or "")
    else:
        method, token = "redirect", None
    intent.card_declined = token == TOKEN_DECLINED
    events = _books(request)[0].submit(payment.id, method=method, token=token)
    _log(request, "payment.confirmed", payment, method=method, payment_method=intent.payment_method)
    send_events(request, events, origin=_origin(request))
    body = _intent_json(request, payment)
    if payment.status == FAILED:
        raise errors.card_declined(body)
    return body


def _idempotent(
    request: web.Request, params: dict[str, Any], step: Callable[[], dict[str, Any]]
) -> web.Response:
    """Answer with what ``step`` makes (or the error it raises), once per ``Idempotency-Key``."""
    key = request.headers.get("Idempotency-Key")
    books = _books(request)[1]
    path = request.path.removeprefix(PREFIX)
    if key is not None:
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise errors.invalid(
                f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters long.",
                param="Idempotency-Key",
            )
        saved = books.replay(key, path, params)
        if saved is not None:
            log.info(
                "psp.request.replayed",
                face=STRIPE,
                path=path,
                status=saved.status,
                idempotency_key=key,
                request_id=saved.request_id,
            )
            headers = {"Idempotent-Replayed": "true", "Request-Id": saved.request_id}
            return web.json_response(saved.body, status=saved.status, headers=headers)
    try:
        status, body = 200, step()
    except StripeError as exc:
        _log_refusal(request, exc)
        status, body = exc.status, exc.body()
    if key is not None:
        books.save(key, path, params, status, body, request[REQUEST_ID])
    return web.json_response(body, status=status)


# -- handlers -----------------------------------------------------------------------------------


async def create_payment_intent(request: web.Request) -> web.Response:
    """``POST /v1/payment_intents``: create a PaymentIntent, and confirm it with ``confirm=true``."""
    raw = await _params(request)
    params = Params(raw, CREATE_PARAMS)
    amount = _amount(params, "amount", required=True)
    assert amount is not None
    currency = _currency(params)
    confirm = bool(params.boolean("confirm"))
    description = params.string("description")
    metadata = params.metadata()
    given = _method_params(params)
    choice = _choose(given, None, confirming=confirm)

    def step() -> dict[str, Any]:
        ledger, books = _books(request)
        # The ledger keeps currencies upper-case, as the native face gives them.
        payment = ledger.open_payment(
            amount_cents=amount, currency=currency.upper(), metadata=metadata, face=STRIPE, prefix="pi"
        )
        intent = books.intents[payment.id] = Intent.new(payment.id, choice.types, description)
        intent.payment_method, intent.redirect_type = choice.payment_method, choice.redirect_type
        _log(request, "payment.created", payment, amount_cents=amount, confirm=confirm)
        if confirm:
            return _confirm(request, payment, intent, choice, given.return_url)
        return _intent_json(request, payment)

    return _idempotent(request, raw, step)


async def get_payment_intent(request: web.Request) -> web.Response:
    """``GET /v1/payment_intents/{id}``."""
    Params(await _params(request), allowed=())
    payment, _ = _find_intent(request)
    return web.json_response(_intent_json(request, payment))


async def confirm_payment_intent(request: web.Request) -> web.Response:
    """``POST /v1/payment_intents/{id}/confirm``: confirm a PaymentIntent created unconfirmed."""
    raw = await _params(request)
    given = _method_params(Params(raw, CONFIRM_PARAMS))
    payment, intent = _find_intent(request)

    def step() -> dict[str, Any]:
        body = _intent_json(request, payment)
        if payment.status == FAILED:
            # Stripe would take another payment method; the ledger's failed payments are final.
            raise errors.unexpected_state(
                "This PaymentIntent's payment failed, and the sandbox does not attempt a payment "
                "twice: create a new PaymentIntent.",
                body,
            )
        if body["status"] not in (objects.REQUIRES_PAYMENT_METHOD, objects.REQUIRES_CONFIRMATION):
            raise errors.unexpected_state(
                f"You cannot confirm this PaymentIntent because it has a status of {body['status']}. "
                "Only a PaymentIntent with one of the following statuses may be confirmed: "
                "requires_payment_method, requires_confirmation.",
                body,
            )
        choice = _choose(given, intent, confirming=True)
        return _confirm(request, payment, intent, choice, given.return_url)

    return _idempotent(request, raw, step)


async def cancel_payment_intent(request: web.Request) -> web.Response:
    """``POST /v1/payment_intents/{id}/cancel``: a PaymentIntent not yet succeeded is canceled."""
    raw = await _params(request)
    params = Params(raw, CANCEL_PARAMS)
    reason = params.string("cancellation_reason")
    if reason is not None and reason not in CANCELLATION_REASONS:
        raise errors.invalid(
            f"Invalid cancellation_reason: must be one of {', '.join(CANCELLATION_REASONS)}",
            param="cancellation_reason",
        )
    payment, intent = _find_intent(request)

    def step() -> dict[str, Any]:
        body = _intent_json(request, payment)
        if body["status"] in ("succeeded", "canceled"):
            raise errors.cannot_cancel(body)
        intent.cancellation_reason = reason
        _, events = _books(request)[0].cancel(payment.id)
        _log(request, "payment.cancelled", payment, cancellation_reason=reason)
        send_events(request, events, origin=_origin(request))
        return _intent_json(request, payment)

    return _idempotent(request, raw, step)


async def create_refund(request: web.Request) -> web.Response:
    """``POST /v1/refunds``: refund (part of) a succeeded PaymentIntent; it succeeds at once."""
    raw = await _params(request)
    params = Params(raw, REFUND_PARAMS)
    payment_id = params.string("payment_intent", required=True)
    assert payment_id is not None
    amount = _amount(params, "amount")
    metadata = params.metadata()

    def step() -> dict[str, Any]:
        ledger, books = _books(request)
        payment = ledger.payments.get(payment_id)
        if payment is None or payment_id not in books.intents:
            raise errors.no_such("payment_intent", payment_id, "payment_intent", status=400)
        try:
            refund, events = ledger.create_refund(
                key=None, fingerprint=None, payment_id=payment_id, amount_cents=amount, metadata=metadata
            )
        except ProviderError as exc:
            raise _refund_refused(exc, payment, amount) from None
        log.info(
            "psp.refund.created",
            face=STRIPE,
            refund_id=refund.id,
            payment_id=payment.id,
            order_id=payment.order_id,
            amount_cents=refund.amount_cents,
            request_id=request[REQUEST_ID],
        )
        send_events(request, events, origin=_origin(request))
        return objects.refund(refund)

    return _idempotent(request, raw, step)


def _refund_refused(exc: ProviderError, payment: Payment, amount: int | None) -> Exception:
    """The ledger's refusal of a refund, as Stripe words it."""
    if exc.code == "not_refundable":
        return errors.invalid(
            f"This PaymentIntent ({payment.id}) does not have a successful charge to refund.",
            param="payment_intent",
        )
    if exc.code == "already_refunded":
        charge = objects.charge_id(payment.id)
        return errors.invalid(f"Charge {charge} has already been refunded.", code="charge_already_refunded")
    if exc.code == "amount_too_large" and amount is not None:
        left = payment.amount_cents - payment.amount_refunded_cents
        return errors.invalid(
            f"Refund amount ({_money(amount, payment.currency)}) is greater than unrefunded amount on "
            f"charge ({_money(left, payment.currency)})",
            code="amount_too_large",
            param="amount",
        )
    return exc


def _money(cents: int, currency: str) -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency.upper())
    if symbol is None:
        return f"{cents / 100:.2f} {currency.upper()}"
    return f"{symbol}{cents / 100:.2f}"


async def get_refund(request: web.Request) -> web.Response:
    """``GET /v1/refunds/{id}``: a refund of a PaymentIntent (not one of a native payment)."""
    Params(await _params(request), allowed=())
    ledger, books = _books(request)
    refund_id = request.match_info["id"]
    refund = ledger.refunds.get(refund_id)
    if refund is None or refund.payment_id not in books.intents:
        raise errors.no_such("refund", refund_id, "refund")
    return web.json_response(objects.refund(refund))


# -- the sub-app --------------------------------------------------------------------------------


def _request_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "req_" + "".join(secrets.choice(alphabet) for _ in range(14))


def _log_refusal(request: web.Request, exc: StripeError) -> None:
    log.info(
        "psp.request.refused",
        face=STRIPE,
        method=request.method,
        path=request.path,
        status=exc.status,
        type=exc.error["type"],
        code=exc.error.get("code"),
        request_id=request[REQUEST_ID],
    )


def _error_response(request: web.Request, exc: StripeError) -> web.Response:
    _log_refusal(request, exc)
    return web.json_response(exc.body(), status=exc.status)


@web.middleware
async def _stripe_api(request: web.Request, handler: Any) -> web.StreamResponse:
    """Authenticate, name the request (``Request-Id``), and answer every failure as Stripe does."""
    request[REQUEST_ID] = _request_id()
    try:
        _authenticate(request)
        response = await handler(request)
    except StripeError as exc:
        response = _error_response(request, exc)
    except ProviderError as exc:
        # A ledger refusal no handler words the Stripe way; its message still says why.
        response = _error_response(request, StripeError(exc.status, exc.message))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        failure = StripeError(exc.status, exc.reason)
        if exc.status in (404, 405):
            # Stripe has no 405: a known URL with another method is just as unrecognized.
            failure = StripeError(
                404,
                f"Unrecognized request URL ({request.method}: {request.path.removeprefix(PREFIX)}). "
                "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        response = _error_response(request, failure)
    except Exception:
        log.exception("psp.request.error", face=STRIPE, method=request.method, path=request.path)
        response = web.json_response(
            StripeError(
                500, "Unexpected error in the sandbox's Stripe face.", error_type=errors.API_ERROR
            ).body(),
            status=500,
        )
    # A replay keeps the id of the request it replays.
    response.headers.setdefault("Request-Id", request[REQUEST_ID])
    return response


def install(app: web.Application, *, webhook_secret: str) -> None:
    """Serve the Stripe face under ``/stripe`` of the provider app ``app`` (which already holds
    the ledger, the webhook sender and the native renderer); its events are signed with
    ``webhook_secret``."""
    books = app[BOOKS] = StripeBooks()
    app[RENDERERS][STRIPE] = renderer(app[LEDGER], books, webhook_secret)
    face = web.Application(middlewares=[_stripe_api])
    face.add_routes(
        [
            web.post("/v1/payment_intents", create_payment_intent),
            web.get("/v1/payment_intents/{id}", get_payment_intent),
            web.post("/v1/payment_intents/{id}/confirm", confirm_payment_intent),
            web.post("/v1/payment_intents/{id}/cancel", cancel_payment_intent),
            web.post("/v1/refunds", create_refund),
            web.get("/v1/refunds/{id}", get_refund),
        ]
    )
    app.add_subapp(PREFIX, face)
