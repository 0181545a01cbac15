"""The gateway reads bodies with orjson and writes answers with it, with the standard library's results."""

from __future__ import annotations

import json
import math

import pytest

from gateway.http.json_documents import _parse_json_strictly, parse_json
from gateway.http.problems import Problem, problem_response
from gateway.http.responses import dumps, json_response

DOCUMENTS = [
    b'{"items": [{"sku": "A-1", "quantity": 2}], "payment": {"method": "token", "token": "pm_card_ok"}}',
    b'{"a": 1, "a": 2, "b": [true, false, null], "c": -0, "d": -0.0, "e": 1.5e-400, "f": 0.1}',
    b'{"name": "Zo\xc3\xab \xf0\x9f\x98\x80", "escaped": "\\u00e9\\ud83d\\ude00\\n\\t\\/", "nul": "\\u0000"}',
    # Integers past 64 bits stay exact integers (orjson would read them as floats).
    b'{"n": 100000000000000000000000000000}',
    b"-9223372036854775809",
    b"18446744073709551616",
    b"9223372036854775807",
    b"1234567890123456789012.5",
    b"1.7976931348623157e308",
    b"2.2250738585072014e-308",
    b"4.9e-324",
    b"123456789012345678",
    b"[" * 150 + b"]" * 150,
]
MALFORMED = [
    b"{",
    b"NaN",
    b'{"a": Infinity}',
    b"-Infinity",
    b'{"email": 1e999}',
    b"1E400",
    b'"\\ud800"',
    b'"\\udc00x"',
    b"\xff\xfe",
    b'"\xed\xa0\x80"',
    b"\xef\xbb\xbf{}",
    b'"\x01"',
    b"[1,]",
    b'{"a":1,}',
    b"01",
    b"[" * 50_000,
    b"[" * 1100 + b"]" * 1100,
    b"[] []",
    b"\x0c{}",
]


def same(a, b) -> bool:
    """Equal, with the same types throughout (1 and 1.0, 0.0 and -0.0 differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@pytest.mark.parametrize("raw", DOCUMENTS)
def test_a_document_reads_as_the_standard_library_reads_it(raw):
    assert same(parse_json(raw), _parse_json_strictly(raw))


@pytest.mark.parametrize("raw", MALFORMED)
def test_a_malformed_document_is_refused_with_the_standard_librarys_message(raw):
    with pytest.raises(Problem) as fast:
        parse_json(raw)
    with pytest.raises(Problem) as strict:
        _parse_json_strictly(raw)
    assert (fast.value.status, fast.value.type, fast.value.detail) == (
        strict.value.status,
        strict.value.type,
        strict.value.detail,
    )
    assert fast.value.status == 400 and fast.value.type.endswith("/malformed-json")


def test_answers_are_json_of_the_same_values():
    document = {
        "id": "abc",
        "total_cents": 4500,
        "archived": False,
        "reason": None,
        "name": "Zoë 😀",
        "lines": [{"sku": "A", "quantity": 1, "unit_price_cents": None}],
        "ratio": 0.25,
    }
    assert json.loads(dumps(document)) == document


def test_what_orjson_cannot_write_is_written_by_the_standard_library():
    # A free-form shipping address may hold an integer past 64 bits; keys may be other than strings.
    for document in ({"n": 10**30}, {1: "one"}, {"text": "\ud800"}):
        assert json.loads(dumps(document)) == json.loads(json.dumps(document))
    with pytest.raises(TypeError):
        dumps({"unencodable": object()})


def test_answers_and_problems_keep_their_content_types():
    response = json_response({"ok": True}, status=202, headers={"Location": "/orders/1"})
    assert (response.status, response.headers["Content-Type"], response.headers["Location"]) == (
        202,
        "application/json; charset=utf-8",
        "/orders/1",
    )
    assert json.loads(response.body) == {"ok": True}
    problem = problem_response(429, "slow down", headers={"Retry-After": "60"}, limit=5)
    assert (problem.status, problem.headers["Content-Type"], problem.headers["Retry-After"]) == (
        429,
        "application/problem+json; charset=utf-8",
        "60",
    )
    assert json.loads(problem.body) == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "slow down",
        "limit": 5,
    }
