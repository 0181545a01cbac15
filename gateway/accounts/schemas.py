"""The bodies of accounts and sign-in, and the account as its owner sees it."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.http.fields import Address, Email, Name
from gateway.payments.schemas import DefaultPaymentMethod
from models.documents import Id, Time

Password = Annotated[str, Meta(min_length=8, max_length=128, extra_json_schema={"format": "password"})]


class NewAccount(Struct, forbid_unknown_fields=True):
    """A customer account to open."""

    email: Email
    name: Name
    password: Password
    shipping_address: Address | UnsetType | None = UNSET
    billing_address: Address | UnsetType | None = UNSET


class AccountChanges(Struct, forbid_unknown_fields=True):
    """Only the fields sent change; `null` clears an address or the default payment method
    (name and password cannot be null)"""

    name: Name | UnsetType = UNSET
    password: Password | UnsetType = UNSET
    shipping_address: Address | UnsetType | None = UNSET
    billing_address: Address | UnsetType | None = UNSET
    # Only ever a provider token: a card number, or a field for one, is refused (422).
    default_payment_method: DefaultPaymentMethod | UnsetType | None = UNSET


class Credentials(Struct, forbid_unknown_fields=True):
    """Email and password to exchange for a bearer token."""

    # As typed: looked up in its canonical form, but never refused for its shape.
    email: Annotated[str, Meta(min_length=1, max_length=254)]
    password: Annotated[str, Meta(min_length=1, max_length=1024, extra_json_schema={"format": "password"})]


class Account(Struct):
    """An account as its owner sees it: never the password, and only the token of a payment method"""

    id: Id
    email: str
    name: str
    shipping_address: dict[str, Any] | None
    billing_address: dict[str, Any] | None
    default_payment_method: DefaultPaymentMethod | None
    created_at: Time
    updated_at: Time
