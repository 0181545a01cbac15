"""Errors as RFC 9457 problem details: every failure the gateway answers is ``application/problem+json``.

Handlers raise :class:`Problem`; :func:`problem_middleware` renders it, and also turns aiohttp's
own HTTP errors (unknown route, wrong method, body too large) and unexpected exceptions into
problems, so a client never sees an HTML page or a stack trace.

Problems specific to this API carry a ``type`` under :data:`PROBLEM_BASE`; plain HTTP conditions
(not found, method not allowed, ...) use ``about:blank`` with the status phrase as title.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import hdrs, web
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gateway.http import problem_body
from gateway.http.db_errors import is_transient
from gateway.http.problem_body import PROBLEM_BASE
from gateway.http.responses import json_response

log = structlog.get_logger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    """A kind of problem of this API: its URI slug, HTTP status and fixed title."""

    slug: str
    status: int
    title: str

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.slug


MALFORMED_JSON = ProblemType("malformed-json", 400, "Malformed JSON")
INVALID_REQUEST = ProblemType("invalid-request", 422, "Invalid request")
MISSING_IDEMPOTENCY_KEY = ProblemType("missing-idempotency-key", 400, "Idempotency-Key required")
INVALID_IDEMPOTENCY_KEY = ProblemType("invalid-idempotency-key", 400, "Invalid Idempotency-Key")
IDEMPOTENCY_KEY_REUSED = ProblemType("idempotency-key-reused", 422, "Idempotency-Key reused")
IDEMPOTENCY_KEY_IN_USE = ProblemType("idempotency-key-in-use", 409, "Idempotency-Key in use")
CURRENCY_MISMATCH = ProblemType("currency-mismatch", 422, "Items in different currencies")
ACCOUNT_EXISTS = ProblemType("account-exists", 409, "Account exists")
ITEM_EXISTS = ProblemType("item-exists", 409, "Item exists")
STOCK_LIMIT = ProblemType("stock-limit", 409, "Stock limit exceeded")
INVALID_CREDENTIALS = ProblemType("invalid-credentials", 401, "Invalid credentials")
TOO_MANY_ATTEMPTS = ProblemType("too-many-attempts", 429, "Too many sign-in attempts")
TOO_MANY_UNPAID_ORDERS = ProblemType("too-many-unpaid-orders", 429, "Too many unpaid orders")
NOT_REFUNDABLE = ProblemType("not-refundable", 409, "Payment cannot be refunded")
REFUND_TOO_LARGE = ProblemType("refund-too-large", 422, "More than is left to refund")
PAYMENT_NOT_CHANGEABLE = ProblemType("payment-not-changeable", 409, "Payment can no longer be changed")
INVALID_TOKEN = ProblemType("invalid-token", 401, "Invalid token")
INVALID_SIGNATURE = ProblemType("invalid-signature", 400, "Invalid webhook signature")
INVALID_EVENT = ProblemType("invalid-event", 400, "Invalid webhook event")
NOT_READY = ProblemType("not-ready", 503, "Not ready")
NOT_CANCELLABLE = ProblemType("not-cancellable", 409, "Order can no longer be cancelled")
ADDRESS_NOT_CHANGEABLE = ProblemType(
    "address-not-changeable", 409, "Shipping address can no longer be changed"
)
ILLEGAL_TRANSITION = ProblemType("illegal-transition", 409, "Order cannot make this move")
NOT_RETURNABLE = ProblemType("not-returnable", 409, "Order cannot be returned")
ILLEGAL_RETURN_MOVE = ProblemType("illegal-return-move", 409, "Return cannot make this move")
INVALID_CURSOR = ProblemType("invalid-cursor", 400, "Invalid cursor")
EMPTY_CART = ProblemType("empty-cart", 422, "Cart is empty")
CART_FULL = ProblemType("cart-full", 422, "Cart is full")


class Problem(Exception):
    """An error answer: raise it anywhere below a handler to reply with a problem document.

    ``kind`` is a :class:`ProblemType` or a bare HTTP status (rendered as ``about:blank``).
    ``extensions`` are extra members of the document (e.g. ``field``).
    """

    def __init__(
        self,
        kind: ProblemType | int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        if isinstance(kind, ProblemType):
            self.status, self.type, self.title = kind.status, kind.uri, kind.title
        else:
            self.status, self.type, self.title = kind, "about:blank", _phrase(kind)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions
        super().__init__(f"{self.status} {self.title}: {detail}")

    def response(self) -> web.Response:
        """The ``application/problem+json`` response for this problem."""
        return problem_response(
            self.status,
            self.detail,
            type_=self.type,
            title=self.title,
            headers=self.headers,
            **self.extensions,
        )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> web.Response:
    """Render one problem document."""
    body = problem_body.Problem(
        type=type_, title=title or _phrase(status), status=status, detail=detail, **extensions
    )
    return json_response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


# Headers of an aiohttp HTTPException that describe its own (plain-text) body, not the condition.
_BODY_HEADERS = frozenset({hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH, hdrs.CONTENT_ENCODING})


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        detail = f"{exc.method} is not allowed on {request.path}; allowed: {allowed}"
    elif status == 404:
        detail = f"nothing found at {request.path}"
    elif exc.text and not exc.text.startswith(f"{status}:"):
        detail = exc.text
    else:
        detail = _phrase(status)
    headers = {name: value for name, value in exc.headers.items() if name not in _BODY_HEADERS}
    return problem_response(status, detail, headers=headers)


def _unavailable() -> web.Response:
    return problem_response(
        503,
        "the service is briefly unable to handle the request; please retry",
        headers={hdrs.RETRY_AFTER: "1"},
    )


@web.middleware
async def problem_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Answer every error raised below as a problem document."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are answers, not errors
            raise
        return _from_http_exception(request, exc)
    except (InterfaceError, PoolTimeoutError) as exc:
        # Database unreachable or every pooled connection busy: the client may simply retry.
        log.error("http.database_unavailable", method=request.method, path=request.path, exc_info=exc)
        return _unavailable()
    except DBAPIError as exc:
        if not is_transient(exc):
            log.error("http.unhandled_error", method=request.method, path=request.path, exc_info=exc)
            return problem_response(500, "an unexpected error occurred; it has been logged")
        log.warning("http.database_unavailable", method=request.method, path=request.path, exc_info=exc)
        return _unavailable()
    except Exception as exc:
        log.error("http.unhandled_error", method=request.method, path=request.path, exc_info=exc)
        return problem_response(500, "an unexpected error occurred; it has been logged")
