"""One normalisation of emails, shared by sign-up, sign-in and the sign-in throttle (no services)."""

from __future__ import annotations

import unicodedata

import pytest

from gateway.accounts.schemas import NewAccount
from gateway.accounts.sign_in_limits import email_key
from gateway.http.bodies import convert
from gateway.http.problems import Problem
from models.identity import normalize_email

ZOE = "zoe.x@example.com"
ZOE_NFC = unicodedata.normalize("NFC", "zoë.x@example.com")
ZOE_NFD = unicodedata.normalize("NFD", "zoë.x@example.com")
#: Ways of typing the one address zoë.x@example.com.
ZOE_DIAERESIS_SPELLINGS = [
    ZOE_NFC,
    ZOE_NFD,
    ZOE_NFC.upper(),
    ZOE_NFD.upper(),
    f"  {ZOE_NFD}\t",
    "Zoë.X@Example.COM",
]


def test_spellings_of_one_address_have_one_canonical_form():
    assert ZOE_NFC != ZOE_NFD  # the test is about two different strings
    assert {normalize_email(spelling) for spelling in ZOE_DIAERESIS_SPELLINGS} == {ZOE_NFC}


def test_an_accent_makes_another_address():
    assert normalize_email(ZOE) != normalize_email(ZOE_NFC)
    assert normalize_email("ZOE.X@example.com") == ZOE


def check(email: str) -> str:
    """The email of a sign-up body as the gateway stores it."""
    return convert({"email": email, "name": "Zoë", "password": "long enough"}, NewAccount).email


def test_the_email_field_stores_the_canonical_form():
    assert {check(spelling) for spelling in ZOE_DIAERESIS_SPELLINGS} == {ZOE_NFC}
    assert check(" Ada@Example.com ") == "ada@example.com"
    assert check(ZOE) == ZOE


@pytest.mark.parametrize(
    "value", ["ada @example.com", "ada@example", "@example.com", "ada@@example.com", "   "]
)
def test_the_email_field_still_refuses_what_is_no_address(value):
    with pytest.raises(Problem) as refused:
        check(value)
    assert refused.value.extensions["field"] == "email"


def test_the_email_field_is_held_to_the_column_length_after_lower_casing():
    # U+0130 (capital I with dot) lower-cases to two characters: 254 of them would not fit.
    with pytest.raises(Problem):
        check("\u0130" * 125 + "@example.com")
    assert len(check("\u0130" * 100 + "@example.com")) == 212


def test_throttle_counts_every_spelling_of_one_address_together():
    assert {email_key(spelling) for spelling in ZOE_DIAERESIS_SPELLINGS} == {email_key(ZOE_NFC)}
    assert email_key(" ZOE.X@EXAMPLE.COM ") == email_key(ZOE)


def test_throttle_counts_zoe_and_zoe_with_diaeresis_apart():
    assert email_key(ZOE) != email_key(ZOE_NFC)
    assert email_key(ZOE) != email_key(ZOE_NFD)
