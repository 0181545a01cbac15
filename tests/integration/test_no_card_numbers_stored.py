"""No card number reaches the database, whichever way a client sends it and wherever a token is taken.

Every written form of a card number is sent to every field that takes a payment token (an
order's payment, a checkout's payment, the account's default payment method); each is refused
with a 422 naming the field and not repeating the number. Then every text column of every table
of this run's database is read, and none holds a card number.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from sqlalchemy import text, update

from models.card_numbers import StoredCardNumber, find_stored_card_numbers, text_columns
from models.tables import Account
from tests.support.card_numbers import CARD_NUMBERS
from tests.support.gateway_calls import customer

_NOT_ALPHANUMERIC = re.compile(r"[\W_]")


def digits_of(value: str) -> str:
    """The value with every separator dropped, letters kept (so they still break runs of digits)."""
    return _NOT_ALPHANUMERIC.sub("", unicodedata.normalize("NFKC", value))


ATTEMPTED_DIGITS = {digits_of(number) for number in CARD_NUMBERS.values()} - {""}


async def refused(response, field: str, number: str) -> None:
    body = await response.text()
    assert response.status == 422, (field, repr(number), body)
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["field"] == field and "card number" in problem["detail"]
    assert number not in body and digits_of(number) not in digits_of(body)


async def stocked_item(client, admin) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    created = await client.post(
        "/items", headers=admin, json={"sku": sku, "name": "Thing", "price_cents": 500}
    )
    assert created.status == 201, await created.text()
    received = await client.post(f"/items/{sku}/stock", headers=admin, json={"quantity": 100})
    assert received.status == 201, await received.text()
    return sku


def keyed(auth: dict[str, str]) -> dict[str, str]:
    return {**auth, "Idempotency-Key": uuid.uuid4().hex}


async def every_text_value(connection):
    """(table, column, value) for every non-null value of every text column of the database."""
    for table, columns in (await text_columns(connection)).items():
        selected = ", ".join(f"`{column}`" for column in columns)
        for row in await connection.execute(text(f"SELECT {selected} FROM `{table}`")):
            for column, value in zip(columns, row, strict=True):
                if isinstance(value, str):
                    yield table, column, value


async def test_no_form_of_a_card_number_is_stored_anywhere(client, admin, engine, sessionmaker):
    auth = await customer(client)
    sku = await stocked_item(client, admin)
    line = [{"sku": sku, "quantity": 1}]
    put = await client.put(f"/cart/items/{sku}", headers=auth, json={"quantity": 1})
    assert put.status == 200, await put.text()

    for number in CARD_NUMBERS.values():
        payment = {"method": "token", "token": number}
        await refused(
            await client.post("/orders", headers=keyed(auth), json={"items": line, "payment": payment}),
            "payment.token",
            number,
        )
        await refused(
            await client.post("/cart/checkout", headers=keyed(auth), json={"payment": payment}),
            "payment.token",
            number,
        )
        await refused(
            await client.patch("/accounts/me", headers=auth, json={"default_payment_method": payment}),
            "default_payment_method.token",
            number,
        )

    # The same requests with a provider token go through: the refusals were about the number.
    ok = {"method": "token", "token": "pm_card_visa"}
    assert (
        await client.patch("/accounts/me", headers=auth, json={"default_payment_method": ok})
    ).status == 200
    assert (
        await client.post("/orders", headers=keyed(auth), json={"items": line, "payment": ok})
    ).status == 202
    assert (await client.post("/cart/checkout", headers=keyed(auth), json={"payment": ok})).status == 202

    async with engine.connect() as connection:
        assert await find_stored_card_numbers(connection) == []
        # The operator's scan skips what is not a card number for sure (a wrong check digit, 12
        # digits); none of the attempted numbers is anywhere, in any spelling, either.
        assert [
            (table, column)
            async for table, column, value in every_text_value(connection)
            if any(digits in digits_of(value) for digits in ATTEMPTED_DIGITS)
        ] == []


async def test_the_scan_names_where_a_card_number_sits_without_showing_it(client, engine, sessionmaker):
    auth = await customer(client)
    account_id = (await (await client.get("/accounts/me", headers=auth)).json())["id"]
    # Written behind the gateway's back, as an old bug or a careless import would.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(default_payment_token="4242\u00a04242\u00a04242\u00a04242")
        )
    try:
        async with engine.connect() as connection:
            findings = await find_stored_card_numbers(connection)
    finally:
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Account).where(Account.id == account_id).values(default_payment_token=None)
            )

    assert findings == [StoredCardNumber("accounts", "default_payment_token", {"id": account_id})]
    assert "4242" not in repr(findings)
