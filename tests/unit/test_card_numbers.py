"""Card numbers in any written form are told apart from payment-provider tokens (no services)."""

from __future__ import annotations

import pytest

from gateway.http.bodies import convert
from gateway.http.problems import Problem
from gateway.payments.schemas import DefaultPaymentMethod, TokenPayment
from models.card_numbers import could_be_card_number, luhn_valid, probably_holds_card_number
from tests.support.card_numbers import CARD_NUMBERS, TOKENS


@pytest.mark.parametrize("form", CARD_NUMBERS)
def test_a_card_number_in_any_form_could_be_one(form):
    assert could_be_card_number(CARD_NUMBERS[form])


@pytest.mark.parametrize("token", TOKENS)
def test_provider_tokens_are_not_card_numbers(token):
    assert not could_be_card_number(token)


def test_eleven_digits_are_not_a_card_number_however_grouped():
    assert not could_be_card_number("1234 5678 901")
    assert not could_be_card_number("12345678901")


def test_letters_end_a_run_of_digits():
    # A token's letters and digits interleave; twelve digits split by letters are no card number.
    assert not could_be_card_number("pm_123456a789012")
    assert could_be_card_number("pm_123456-789012")


TOKEN_TYPES = [TokenPayment, DefaultPaymentMethod]


@pytest.mark.parametrize("form", CARD_NUMBERS)
@pytest.mark.parametrize("token_type", TOKEN_TYPES, ids=["order", "stored"])
def test_token_fields_refuse_card_numbers_without_repeating_them(token_type, form):
    with pytest.raises(Problem) as refused:
        convert({"method": "token", "token": CARD_NUMBERS[form]}, token_type)

    assert refused.value.extensions["field"] == "token"
    assert "card number" in refused.value.detail
    assert not any(char.isdigit() for char in refused.value.detail)


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("token_type", TOKEN_TYPES, ids=["order", "stored"])
def test_token_fields_accept_provider_tokens(token_type, token):
    assert convert({"method": "token", "token": token}, token_type).token == token


def test_luhn_check():
    assert luhn_valid("4242424242424242") and luhn_valid("378282246310005") and luhn_valid("5555555555554444")
    assert not luhn_valid("4242424242424241")


@pytest.mark.parametrize(
    "text",
    [
        "4242 4242 4242 4242",
        "4242424242424242",
        "pm_4242424242424242",
        '{"note": "4242-4242-4242-4242"}',
        "\uff14\uff12\uff14\uff12" * 4,
        "3782 822463 10005",
        "4242\u00a04242\u00a04242\u00a04242",
    ],
)
def test_stored_data_rule_finds_card_numbers(text):
    assert probably_holds_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        # ids, timestamps, a barcode, amounts: what the database is full of
        "0c9d3f42424242424242ab3f9e1c7d21",  # hex id with a Luhn-valid run of digits inside
        "2026-11-21T16:01:09.427Z",
        "2026-11-21T16:01:09.427190+00:00",
        "012345678905",  # a UPC-A barcode: 12 digits
        '{"amount_cents": 1800, "currency": "USD", "at": "2026-11-21T16:01:09.427Z"}',
        "4242 4242 4242 4241",  # wrong check digit (refused on input, not reported in stored data)
        "pm_card_ok",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
    ],
)
def test_stored_data_rule_ignores_ids_timestamps_and_barcodes(text):
    assert not probably_holds_card_number(text)
