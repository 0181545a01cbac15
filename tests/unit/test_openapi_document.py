"""The OpenAPI document on its own (no services): valid OpenAPI 3.0, every operation says who may
call it and how it fails, and its body schemas are the very types that read the bodies."""

from __future__ import annotations

import json

import pytest

from gateway.http.bodies import decode
from gateway.http.problems import Problem
from gateway.openapi.components import REQUEST_BODIES, body_schemas
from gateway.openapi.spec import build_spec

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def test_the_document_is_valid_openapi():
    from openapi_spec_validator import validate  # a dev dependency, like schemathesis

    spec = build_spec()

    validate(spec)

    assert spec["openapi"].startswith("3.0.")
    ids = [
        op["operationId"]
        for item in spec["paths"].values()
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_every_operation_says_who_may_call_it_and_how_it_fails():
    spec = build_spec()
    schemes = set(spec["components"]["securitySchemes"])
    for path, item in spec["paths"].items():
        for method, op in item.items():
            name = f"{method.upper()} {path}"
            assert "security" in op, f"{name} does not say who may call it"
            for requirement in op["security"]:
                assert set(requirement) <= schemes, f"{name} names an unknown security scheme"
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        f"{name} {status} is not a problem document"
                    )
            if op["security"]:
                assert "401" in op["responses"], f"{name} needs a token but documents no 401"
            for parameter in op.get("parameters", []):
                if parameter.get("$ref", "").endswith("/IdempotencyKey"):
                    assert "400" in op["responses"], f"{name} requires Idempotency-Key but documents no 400"


def test_every_request_body_schema_is_generated_from_its_type():
    spec = build_spec()
    schemas = spec["components"]["schemas"]
    for body_type in REQUEST_BODIES:
        assert schemas[body_type.__name__] == body_schemas()[body_type.__name__]
    referenced = {
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for item in spec["paths"].values()
        for op in item.values()
        if "requestBody" in op
    }
    assert referenced == {body_type.__name__ for body_type in REQUEST_BODIES}


def test_the_documented_limit_is_the_enforced_one():
    line = body_schemas()["OrderLineRequest"]["properties"]["quantity"]
    assert (line["minimum"], line["maximum"]) == (1, 1000)

    body = {"items": [{"sku": "MUG", "quantity": line["maximum"] + 1}]}
    with pytest.raises(Problem) as refused:
        decode(json.dumps(body).encode(), _type("NewOrder"))
    assert refused.value.status == 422
    assert refused.value.extensions == {"field": "items[0].quantity"}
    assert refused.value.detail == "items[0].quantity: must be an integer from 1 to 1000"

    body["items"][0]["quantity"] = line["maximum"]
    assert decode(json.dumps(body).encode(), _type("NewOrder")).items[0].quantity == 1000


@pytest.mark.parametrize(
    ("body", "status", "field", "detail"),
    [
        (b"[]", 422, "body", "body: must be a JSON object"),
        (b'{"items": NaN}', 400, None, "the body is not valid JSON: NaN is not valid JSON"),
        (b"{}", 422, "items", "items: is required"),
        (
            b'{"items": [{"sku": "A", "quantity": 1}], "price": 1}',
            422,
            "price",
            "price: is not a known field",
        ),
        (b'{"items": [{"sku": "a b", "quantity": 1}]}', 422, "items[0].sku", None),
        (
            b'{"items": [{"sku": "A", "quantity": 1}], "payment": {"method": "card"}}',
            422,
            "payment.method",
            "payment.method: must be one of 'token', 'redirect'",
        ),
        (
            b'{"items": [{"sku": "A", "quantity": true}]}',
            422,
            "items[0].quantity",
            "items[0].quantity: must be an integer",
        ),
    ],
)
def test_refusals_are_problems_naming_the_field(body, status, field, detail):
    with pytest.raises(Problem) as refused:
        decode(body, _type("NewOrder"))
    assert refused.value.status == status
    assert refused.value.extensions.get("field") == field
    if detail is not None:
        assert refused.value.detail == detail


def test_a_pattern_matches_the_whole_value_in_python_as_in_json_schema():
    with pytest.raises(Problem) as refused:
        decode(b'{"items": [{"sku": "MUG\\n", "quantity": 1}]}', _type("NewOrder"))
    assert refused.value.extensions == {"field": "items[0].sku"}


def _type(name: str) -> type:
    return next(body_type for body_type in REQUEST_BODIES if body_type.__name__ == name)
