"""The Stripe face's form decoding and parameter reading, against bodies the SDK really encodes."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from stripe._encode import _api_encode

from sandbox.stripe_face.errors import StripeError
from sandbox.stripe_face.forms import MAX_FIELDS, Params, decode


def sdk_body(params: dict[str, Any]) -> bytes:
    """A body as the SDK's requestor encodes it (brackets left readable, as it sends them)."""
    encoded = urllib.parse.urlencode(list(_api_encode(params)))
    return encoded.replace("%5B", "[").replace("%5D", "]").encode()


def refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(StripeError) as raised:
        call()
    assert raised.value.status == 400
    return raised.value.error


# -- decode -------------------------------------------------------------------------------------


def test_decodes_what_the_sdk_encodes() -> None:
    body = sdk_body(
        {
            "amount": 1250,
            "currency": "usd",
            "confirm": True,
            "payment_method_types": ["card", "ideal"],
            "payment_method_data": {"type": "ideal"},
            "metadata": {"order_id": "ord_1", "note": "a&b=c [x]"},
            "description": None,  # the SDK leaves None out
        }
    )
    assert decode(body) == {
        "amount": "1250",
        "currency": "usd",
        "confirm": "true",
        "payment_method_types": {"0": "card", "1": "ideal"},
        "payment_method_data": {"type": "ideal"},
        "metadata": {"order_id": "ord_1", "note": "a&b=c [x]"},
    }


def test_percent_encoded_brackets_and_empty_bodies() -> None:
    assert decode(b"metadata%5Border_id%5D=o%201") == {"metadata": {"order_id": "o 1"}}
    assert decode(b"") == {}
    assert decode(b"description=") == {"description": ""}


def test_empty_brackets_append_to_an_array() -> None:
    assert decode(b"expand[]=a&expand[]=b&x[y][]=1") == {"expand": ["a", "b"], "x": {"y": ["1"]}}


def test_deep_nesting() -> None:
    assert decode(b"a[b][c][d]=1&a[b][e]=2") == {"a": {"b": {"c": {"d": "1"}, "e": "2"}}}


@pytest.mark.parametrize(
    "body",
    [
        b"a=1&a=2",  # twice
        b"a=1&a[b]=2",  # a value and a hash
        b"a[b]=2&a=1",
        b"a[]=1&a[0]=2",  # an array and a hash
        b"a[0]=2&a[]=1",
        b"a[][b]=1",  # an empty segment inside a name
        b"a[][]=1",
        b"[a]=1",  # no name
        b"a[b=1",  # unbalanced
        b"a]b=1",
        b"a[b]c=1",
        b"\xff=1",  # not UTF-8
        b"a=%ff",
    ],
)
def test_bad_bodies_are_refused(body: bytes) -> None:
    error = refusal(lambda: decode(body))
    assert error["type"] == "invalid_request_error"


def test_too_many_fields_are_refused() -> None:
    body = "&".join(f"metadata[k{i}]=v" for i in range(MAX_FIELDS + 1)).encode()
    refusal(lambda: decode(body))


# -- Params -------------------------------------------------------------------------------------


def test_unknown_parameters_are_named() -> None:
    error = refusal(lambda: Params(decode(b"amount=1&colour=red"), ["amount"]))
    assert (error["code"], error["param"]) == ("parameter_unknown", "colour")
    assert error["message"] == "Received unknown parameter: colour"

    nested = Params(
        decode(b"payment_method_data[type]=ideal&payment_method_data[x]=1"), ["payment_method_data"]
    )
    error = refusal(lambda: nested.hash("payment_method_data", ["type"]))
    assert (error["code"], error["param"]) == ("parameter_unknown", "payment_method_data[x]")


def test_missing_and_empty_required_parameters() -> None:
    for body in (b"", b"amount="):
        error = refusal(lambda body=body: Params(decode(body), ["amount"]).integer("amount", required=True))
        assert (error["code"], error["param"]) == ("parameter_missing", "amount")
        assert error["message"] == "Missing required param: amount."
    data = Params(decode(b"payment_method_data[other]="), ["payment_method_data"]).hash(
        "payment_method_data", ["type", "other"]
    )
    assert data is not None
    error = refusal(lambda: data.string("type", required=True))
    assert error["param"] == "payment_method_data[type]"


@pytest.mark.parametrize("raw, value", [("1250", 1250), ("-3", -3), ("0", 0)])
def test_integers(raw: str, value: int) -> None:
    assert Params({"amount": raw}, ["amount"]).integer("amount") == value


@pytest.mark.parametrize("raw", ["12.5", "1e3", "abc", " 12", "0x10", "9" * 19, "true"])
def test_non_integers_are_refused(raw: str) -> None:
    error = refusal(lambda: Params({"amount": raw}, ["amount"]).integer("amount"))
    assert (error["code"], error["param"]) == ("parameter_invalid_integer", "amount")
    assert error["message"] == f"Invalid integer: {raw}"


def test_a_hash_where_a_value_is_expected_is_refused() -> None:
    error = refusal(lambda: Params(decode(b"amount[x]=1"), ["amount"]).integer("amount"))
    assert error["param"] == "amount"


def test_booleans() -> None:
    params = Params(decode(b"a=true&b=false"), ["a", "b", "c"])
    assert (params.boolean("a"), params.boolean("b"), params.boolean("c")) == (True, False, None)
    for raw in ("True", "1", "yes", "on"):
        error = refusal(lambda raw=raw: Params({"confirm": raw}, ["confirm"]).boolean("confirm"))
        assert error["param"] == "confirm"


def test_arrays_indexed_or_appended() -> None:
    params = Params(decode(b"t[1]=ideal&t[0]=card&u[]=x"), ["t", "u", "v"])
    assert params.string_list("t") == ["card", "ideal"]
    assert params.string_list("u") == ["x"]
    assert params.string_list("v") is None


@pytest.mark.parametrize(
    "body", [b"t[1]=card", b"t[0]=a&t[2]=b", b"t[a]=card", b"t=card", b"t[0][x]=1", b"t[0]="]
)
def test_bad_arrays_are_refused(body: bytes) -> None:
    error = refusal(lambda: Params(decode(body), ["t"]).string_list("t"))
    assert error["param"].startswith("t")


def test_metadata_values_are_strings_and_empty_ones_unset() -> None:
    params = Params(decode(b"metadata[order_id]=o1&metadata[0]=zero&metadata[gone]="), ["metadata"])
    assert params.metadata() == {"order_id": "o1", "0": "zero"}
    assert Params({}, ["metadata"]).metadata() == {}
    assert Params({"metadata": ""}, ["metadata"]).metadata() == {}


@pytest.mark.parametrize(
    "body",
    [
        b"metadata=x",
        b"metadata[a][b]=1",
        b"metadata[" + b"k" * 41 + b"]=v",
        b"metadata[k]=" + b"v" * 501,
        b"&".join(b"metadata[k%d]=v" % i for i in range(51)),
    ],
)
def test_bad_metadata_is_refused(body: bytes) -> None:
    error = refusal(lambda: Params(decode(body), ["metadata"]).metadata())
    assert error["param"].startswith("metadata")


def test_long_strings_are_refused() -> None:
    error = refusal(
        lambda: Params({"description": "x" * 11}, ["description"]).string("description", max_length=10)
    )
    assert error["param"] == "description"
