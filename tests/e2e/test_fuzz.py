"""Schemathesis against the running fleet: every operation of ``/openapi.json``, fed generated input.

Each operation gets three passes:

- valid requests (schemathesis' positive mode); ``POST /payments/webhook`` signed with the
  fleet's webhook secret, so generated events get past the signature check;
- invalid requests (negative mode): wrong types, broken constraints, missing credentials;
- valid requests whose path names resources that exist (an item with stock, a paid order and its
  payment, a rejected order), so the success answers of reads, fulfilment, refunds and the live
  status stream are checked too, not only their 404s.

Requests carry a fresh customer's token where the operation takes one, the admin token where only
the operator may call it (schemathesis uses an operation's first security scheme it has a
credential for). Every answer must be no server error and be what the document says: a
documented status code and media type, the documented headers, a body that fits the schema.
Invalid input must be refused, and a request stripped of its credentials too.

One test walks every operation and collects every failure before failing, so one run shows all
disagreements, grouped by operation and check, each with a curl line to replay it. Bounded for
CI: a fixed number of examples per pass, generated deterministically (the same requests on every
run), no shrinking, a timeout per request. The fleet stays usable for the tests after this one:
nothing floods it, and the sign-in rate-limit counter of this address, which the fuzzing of
``POST /auth/token`` fills, is emptied afterwards.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.errors import FailureGroup

from config import load_settings
from providers.webhook_signature import HEADER as SIGNATURE_HEADER
from providers.webhook_signature import sign
from tests.support.polling import eventually_sync
from tests.support.report import report

#: Examples per operation and pass: ~30 operations x 2 passes (+ ~15 with known ids) x this many.
MAX_EXAMPLES = 15
REQUEST_TIMEOUT_SECONDS = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
WEBHOOK_PATH = "/payments/webhook"
PASSWORD = "fuzzing password"


# -- the fleet's side: a customer, and resources whose ids the third pass uses -------------------


def _call(fleet, method: str, path: str, *, token: str | None = None, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(
        method, fleet.gateway_url + path, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS, **kwargs
    )


def _sign_in(fleet, email: str, *, deadline: float) -> str:
    """An access token; waits out the sign-in rate limit an earlier test may have reached."""
    while True:
        response = _call(fleet, "POST", "/auth/token", json={"email": email, "password": PASSWORD})
        if response.status_code == 200:
            return response.json()["access_token"]
        retry_after = float(response.headers.get("Retry-After", "1"))
        assert response.status_code == 429 and time.monotonic() + retry_after < deadline, response.text
        time.sleep(retry_after)


@pytest.fixture
def customer_token(fleet) -> str:
    """A fresh customer's bearer token: the carts, wishlists and orders the fuzzing changes are theirs."""
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    created = _call(fleet, "POST", "/accounts", json={"email": email, "name": "Fuzz", "password": PASSWORD})
    assert created.status_code == 201, created.text
    token = _sign_in(fleet, email, deadline=time.monotonic() + 90)
    # With a default payment method, generated orders that name no payment are taken too.
    changed = _call(
        fleet,
        "PATCH",
        "/accounts/me",
        token=token,
        json={"default_payment_method": {"method": "token", "token": "pm_card_ok"}},
    )
    assert changed.status_code == 200, changed.text
    return token


def _order(fleet, token: str, sku: str, until: set[str]) -> dict:
    placed = _call(
        fleet,
        "POST",
        "/orders",
        token=token,
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "token", "token": "pm_card_ok"}},
    )
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]

    def settled():
        order = _call(fleet, "GET", f"/orders/{order_id}", token=token).json()
        return order if order["status"] in until else None

    return eventually_sync(settled, timeout=30, what=f"order {order_id} in {until}")


@pytest.fixture
def known_ids(fleet, customer_token) -> dict[str, dict[str, str]]:
    """Path parameters naming real resources, per path template."""
    admin = fleet.env["ADMIN_TOKEN"]
    sku = f"FUZZ-{uuid.uuid4().hex[:10].upper()}"
    assert (
        _call(
            fleet, "POST", "/items", token=admin, json={"sku": sku, "name": "Fuzzed", "price_cents": 100}
        ).status_code
        == 201
    )
    assert (
        _call(fleet, "POST", f"/items/{sku}/stock", token=admin, json={"quantity": 1000}).status_code == 201
    )
    paid = _order(fleet, customer_token, sku, {"PLACED"})
    # A final order: its event stream is one event long, then ends.
    rejected = _order(fleet, customer_token, f"NO-SUCH-{uuid.uuid4().hex[:8]}", {"REJECTED"})
    order = {"order_id": paid["id"]}
    return {
        "/items/{sku}": {"sku": sku},
        "/items/{sku}/stock": {"sku": sku},
        "/items/{sku}/receipts": {"sku": sku},
        "/cart/items/{sku}": {"sku": sku},
        "/wishlist/{sku}": {"sku": sku},
        "/orders/{order_id}": order,
        "/orders/{order_id}/cancel": order,
        "/orders/{order_id}/ship": order,
        "/orders/{order_id}/deliver": order,
        "/orders/{order_id}/refund": order,
        "/orders/{order_id}/events": {"order_id": rejected["id"]},
        "/payments/{payment_id}": {"payment_id": paid["payment"]["id"]},
    }


@pytest.fixture
def sign_in_budget_restored(fleet):
    """Empty this address's sign-in counter afterwards: the fuzzing spends it, later tests sign in."""
    yield
    import redis

    from gateway.accounts.sign_in_limits import address_key

    client = redis.Redis.from_url(fleet.env["REDIS_URL"])
    try:
        client.delete(address_key("127.0.0.1"))
    finally:
        client.close()


@pytest.fixture
def api_schema(fleet, customer_token, sign_in_budget_restored):
    """The fleet's own ``/openapi.json``, with both bearer tokens, loaded (and validated) by schemathesis."""
    config = schemathesis.Config.from_dict(
        {
            "base-url": fleet.gateway_url,
            "request-timeout": REQUEST_TIMEOUT_SECONDS,
            "max-stream-events": 5,
            "auth": {
                "openapi": {
                    "customerToken": {"bearer": customer_token},
                    "adminToken": {"bearer": fleet.env["ADMIN_TOKEN"]},
                }
            },
        }
    )
    return schemathesis.openapi.from_url(
        f"{fleet.gateway_url}/openapi.json", config=config, timeout=REQUEST_TIMEOUT_SECONDS
    )


class SigningSession(requests.Session):
    """Signs every webhook request with the provider's secret, over the exact bytes sent."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def send(self, request, **kwargs):
        if request.path_url == WEBHOOK_PATH and request.body is not None:
            body = request.body if isinstance(request.body, bytes) else request.body.encode()
            request.headers[SIGNATURE_HEADER] = sign(self.secret, body)
        return super().send(request, **kwargs)


# -- the fuzzing ------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    """What was sent and what went wrong, per operation."""

    sent: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    # (operation, failure title) -> [count, first failure's message]
    failures: dict[tuple[str, str], list] = field(default_factory=dict)

    def record(self, label: str, title: str, message: str) -> None:
        self.failures.setdefault((label, title), [0, message])[0] += 1

    def summary(self) -> str:
        lines = [
            f"schemathesis: {sum(self.sent.values())} requests to {len(self.sent)} operations, "
            f"{len(self.failures)} distinct failures"
        ]
        for (label, title), (count, message) in sorted(self.failures.items()):
            lines.append(f"\n=== {label}: {title} (x{count})\n{message.strip()}")
        lines.append("\nstatus codes seen:")
        for label, statuses in sorted(self.statuses.items()):
            lines.append(f"  {label}: " + ", ".join(f"{code} x{n}" for code, n in sorted(statuses.items())))
        return "\n".join(lines)


def _fuzz(operation, strategy, name: str, found: FuzzReport, session: requests.Session | None = None) -> None:
    label = operation.label

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        found.sent[label] += 1
        try:
            response = case.call_and_validate(checks=CHECKS, session=session, timeout=REQUEST_TIMEOUT_SECONDS)
        except FailureGroup as group:
            for failure in group.exceptions:
                found.record(label, f"{failure.title} [{name}]", str(group))
            return
        except requests.RequestException as error:
            found.record(label, f"{type(error).__name__} [{name}]", f"{error}\n{case.as_curl_command()}")
            return
        found.statuses[label][response.status_code] += 1

    try:
        run()
    except Unsatisfiable:
        pass  # nothing to make invalid (no parameters, no body): negative mode has no case to send


def _status_events_fit(fleet, api_schema, order_id: str) -> None:
    """The data of each status event is a ``StatusEvent`` (schemathesis checks the events' frame only)."""
    from openapi_schema_validator import OAS30Validator

    spec = api_schema.raw_schema
    validator = OAS30Validator({"$ref": "#/components/schemas/StatusEvent", "components": spec["components"]})
    stream = _call(fleet, "GET", f"/orders/{order_id}/events", token=fleet.env["ADMIN_TOKEN"])
    data = [
        line.removeprefix("data:").strip() for line in stream.text.splitlines() if line.startswith("data:")
    ]
    assert stream.status_code == 200 and data, stream.text
    for event in data:
        validator.validate(json.loads(event))


def _turn(operation) -> int:
    """When an operation is fuzzed: ship and deliver before cancelling, check the cart out before emptying it.

    The passes with existing resources then meet them in states where they succeed (and cancelling a
    delivered order answers its 409).
    """
    if operation.method.upper() == "DELETE":
        return 2
    return 1 if operation.path.endswith("/cancel") else 0


def test_every_operation_answers_as_documented(fleet, api_schema, known_ids):
    _status_events_fit(fleet, api_schema, known_ids["/orders/{order_id}/events"]["order_id"])
    found = FuzzReport()
    started = time.monotonic()
    # The secret the fleet's gateway verifies with (its default when the environment names none).
    with SigningSession(load_settings(fleet.env).psp_webhook_secret) as signing:
        for operation in sorted((result.ok() for result in api_schema.get_all_operations()), key=_turn):
            _fuzz(
                operation,
                operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                "positive",
                found,
                session=signing,
            )
            _fuzz(
                operation, operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), "negative", found
            )
            if operation.path in known_ids:
                _fuzz(
                    operation,
                    operation.as_strategy(
                        generation_mode=GenerationMode.POSITIVE, path_parameters=known_ids[operation.path]
                    ),
                    "existing resources",
                    found,
                )
    elapsed = time.monotonic() - started

    summary = found.summary()
    print(summary)
    report(
        f"fuzzing: {sum(found.sent.values())} requests to {len(found.sent)} operations in {elapsed:.0f} s, "
        f"{len(found.failures)} distinct failures"
    )
    assert not found.failures, summary
