"""The answers' schemas in the OpenAPI document are generated from the Structs the handlers encode,
and the query parameters' limits are the ones the query types enforce (no services)."""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Literal

import msgspec
import pytest

from gateway.catalogue.schemas import MAX_QUERY_LENGTH
from gateway.http.paging import DEFAULT_LIMIT, MAX_LIMIT
from gateway.http.problems import problem_response
from gateway.http.responses import dumps
from gateway.openapi import components, spec
from gateway.openapi.components import REQUEST_BODIES, RESPONSE_BODIES, body_schemas
from gateway.operations.schemas import Health
from models.documents import Order
from models.state import OrderStatus
from models.views import order_document, order_json

AT = datetime(2026, 1, 2, 3, 4, 5, 678000)


def _schema_refs(node: Any) -> set[str]:
    """The component names ``node`` refers to, however deeply."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        return found.union(*(_schema_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_schema_refs(value) for value in node))
    return set()


def _validator(name: str):
    from openapi_schema_validator import OAS30Validator

    document = spec.build_spec()
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": document["components"]})


def _order_row(*, payment: bool = True) -> SimpleNamespace:
    attempt = SimpleNamespace(
        id="b" * 32,
        attempt=1,
        status="SUCCEEDED",
        method="token",
        amount_cents=0,
        refunded_cents=0,
        currency="USD",
        provider_payment_id=None,
        checkout_url=None,
    )
    return SimpleNamespace(
        id="a" * 32,
        source=None,
        status="PLACED",
        reason=None,
        lines=[SimpleNamespace(sku="MUG", quantity=2, unit_price_cents=None)],
        total_cents=0,
        currency="USD",
        hold_expires_at=None,
        shipping_address=None,
        payment=attempt if payment else None,
        payments=[attempt] if payment else [],
        history=[SimpleNamespace(status="PENDING", reason=None, note=None, at=AT)],
        created_at=AT,
        updated_at=AT,
    )


def test_every_schema_in_the_document_is_generated():
    assert spec.build_spec()["components"]["schemas"] == body_schemas()


def test_every_answer_refers_to_a_declared_response_body():
    referenced: set[str] = set()
    for item in spec.build_spec()["paths"].values():
        for op in item.values():
            for response in op["responses"].values():
                referenced |= _schema_refs(response.get("content", {}))
    assert referenced == {body_type.__name__ for body_type in RESPONSE_BODIES} - {"StatusEvent"}
    assert not referenced & {body_type.__name__ for body_type in REQUEST_BODIES}


def test_the_order_schemas_required_fields_are_the_structs_fields():
    schema = spec.build_spec()["components"]["schemas"]["Order"]
    assert schema["required"] == list(Order.__struct_fields__)
    assert list(schema["properties"]) == list(Order.__struct_fields__)


def test_a_field_added_to_a_struct_appears_in_the_document(monkeypatch):
    longer = msgspec.defstruct(
        "Health", [("status", Literal["ok"]), ("uptime_seconds", int)], module=Health.__module__
    )
    monkeypatch.setattr(
        components,
        "RESPONSE_BODIES",
        tuple(longer if body_type is Health else body_type for body_type in RESPONSE_BODIES),
    )
    components._generated.cache_clear()
    spec._spec.cache_clear()
    try:
        schema = spec.build_spec()["components"]["schemas"]["Health"]
    finally:
        monkeypatch.undo()
        components._generated.cache_clear()
        spec._spec.cache_clear()
    assert schema["required"] == ["status", "uptime_seconds"]
    assert schema["properties"]["uptime_seconds"] == {"type": "integer"}
    assert "uptime_seconds" not in spec.build_spec()["components"]["schemas"]["Health"]["properties"]


@pytest.mark.parametrize("payment", [True, False])
def test_the_order_answer_fits_its_schema_and_keeps_nulls_and_lists(payment):
    answer = json.loads(dumps(order_document(_order_row(payment=payment), archived=True)))

    _validator("Order").validate(answer)
    assert answer["source"] == "api" and answer["archived"] is True
    assert answer["reason"] is None and answer["hold_expires_at"] is None
    assert answer["items"] == [{"sku": "MUG", "quantity": 2, "unit_price_cents": None}]
    assert answer["history"] == [
        {"status": "PENDING", "reason": None, "note": None, "at": "2026-01-02T03:04:05.678Z"}
    ]
    assert (answer["payment"] is None) is not payment


def test_a_domain_event_carries_the_answer_itself():
    row = _order_row()
    event_order = order_json(row)

    assert event_order == json.loads(dumps(order_document(row)))
    assert list(event_order) == list(Order.__struct_fields__)


def test_a_problem_answer_fits_the_problem_schema():
    response = problem_response(409, "too late", type_="about:blank", order_status="SHIPPED")
    body = json.loads(response.body)

    _validator("Problem").validate(body)
    assert body == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "too late",
        "order_status": "SHIPPED",
    }


def test_query_parameters_take_their_limits_from_the_query_types():
    document = spec.build_spec()
    limit = document["components"]["parameters"]["Limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, MAX_LIMIT, DEFAULT_LIMIT)

    operations = {op["operationId"]: op for item in document["paths"].values() for op in item.values()}
    search = next(p for p in operations["listItems"]["parameters"] if p.get("name") == "q")
    # An empty ?q= counts as absent, so the parameter documents no minimum length.
    assert search["schema"] == {"type": "string", "maxLength": MAX_QUERY_LENGTH}

    status = next(p for p in operations["listOrders"]["parameters"] if p.get("name") == "status")
    enum = document["components"]["schemas"][status["schema"]["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert sorted(enum) == sorted(status.value for status in OrderStatus)
