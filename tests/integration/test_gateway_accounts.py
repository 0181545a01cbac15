"""Accounts and sign-in through the gateway, on the real database."""

from __future__ import annotations

import dataclasses
import time
import unicodedata
import uuid

import jwt
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text
from structlog.testing import capture_logs

from config.settings import DEV_TOKEN_SECRET
from gateway.app import create_app
from gateway.http.auth import issue_token
from models.tables import Account, IdempotencyKey, Order, Payment


def new_email() -> str:
    return f"Buyer-{uuid.uuid4().hex[:12]}@Example.com"


async def sign_up(client, email: str, password: str = "correct horse battery") -> dict:
    response = await client.post("/accounts", json={"email": email, "name": "Ada", "password": password})
    assert response.status == 201, await response.text()
    return await response.json()


async def test_account_is_created_without_its_password(client):
    email = new_email()
    response = await client.post(
        "/accounts",
        json={
            "email": email,
            "name": "Ada Lovelace",
            "password": "correct horse battery",
            "shipping_address": {"line1": "12 St James's Sq", "city": "London", "country": "GB"},
        },
    )

    assert response.status == 201
    body = await response.json()
    assert body["email"] == email.lower()
    assert body["name"] == "Ada Lovelace"
    assert body["shipping_address"]["city"] == "London"
    assert body["billing_address"] is None
    assert "password" not in body and "password_hash" not in body
    assert body["created_at"].endswith("Z")


async def test_email_is_unique_whatever_its_case(client):
    email = new_email()
    await sign_up(client, email)

    response = await client.post(
        "/accounts", json={"email": email.upper(), "name": "Eve", "password": "another password"}
    )

    assert response.status == 409
    assert response.content_type == "application/problem+json"


async def test_bad_fields_are_named_in_a_422_problem(client):
    cases = [
        ({"email": new_email(), "name": "Ada", "password": "short"}, "password"),
        ({"email": "not-an-email", "name": "Ada", "password": "long enough"}, "email"),
        ({"email": new_email(), "name": "", "password": "long enough"}, "name"),
        ({"email": new_email(), "password": "long enough"}, "name"),
        (
            {"email": new_email(), "name": "Ada", "password": "long enough", "shipping_address": "here"},
            "shipping_address",
        ),
        ({"email": new_email(), "name": "Ada", "password": "x" * 129}, "password"),
        ({"email": new_email(), "name": "Ada", "password": "long enough", "admin": True}, "admin"),
    ]
    for body, field in cases:
        response = await client.post("/accounts", json=body)
        assert response.status == 422, (body, await response.text())
        problem = await response.json()
        assert problem["field"] == field
        assert field in problem["detail"]


async def test_token_opens_the_own_account(client):
    email = new_email()
    account = await sign_up(client, email)

    response = await client.post(
        "/auth/token", json={"email": email.upper(), "password": "correct horse battery"}
    )
    assert response.status == 200
    token = await response.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] > 0

    me = await client.get("/accounts/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status == 200
    assert (await me.json())["id"] == account["id"]


# -- one email, one account: exact comparison of the canonical form --------------------------------


def nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def nfd(value: str) -> str:
    return unicodedata.normalize("NFD", value)


async def sign_in(client, email: str, password: str):
    return await client.post("/auth/token", json={"email": email, "password": password})


async def account_behind(client, response) -> str:
    """The id of the account a successful sign-in opened."""
    assert response.status == 200, await response.text()
    token = (await response.json())["access_token"]
    me = await client.get("/accounts/me", headers={"Authorization": f"Bearer {token}"})
    return (await me.json())["id"]


async def test_zoe_and_zoe_with_a_diaeresis_are_two_accounts(client):
    tag = uuid.uuid4().hex[:8]
    zoe, zoe_diaeresis = f"zoe.x{tag}@example.com", nfc(f"zoë.x{tag}@example.com")

    first = await sign_up(client, zoe, password="zoe's own password")
    second = await sign_up(client, zoe_diaeresis, password="the other zoe's password")

    assert first["id"] != second["id"]
    assert (first["email"], second["email"]) == (zoe, zoe_diaeresis)
    assert await account_behind(client, await sign_in(client, zoe, "zoe's own password")) == first["id"]
    assert (
        await account_behind(client, await sign_in(client, zoe_diaeresis, "the other zoe's password"))
        == second["id"]
    )
    # Neither password opens the other account.
    assert (await sign_in(client, zoe_diaeresis, "zoe's own password")).status == 401
    assert (await sign_in(client, zoe, "the other zoe's password")).status == 401


async def test_composed_and_decomposed_spellings_are_one_account(client, sessionmaker):
    tag = uuid.uuid4().hex[:8]
    composed, decomposed = nfc(f"zoë.y{tag}@example.com"), nfd(f"zoë.y{tag}@example.com")
    assert composed != decomposed

    account = await sign_up(client, decomposed)
    again = await client.post(
        "/accounts", json={"email": composed, "name": "Zoë", "password": "another password"}
    )

    assert account["email"] == composed
    assert again.status == 409, await again.text()
    for spelling in (composed, decomposed):
        assert (
            await account_behind(client, await sign_in(client, spelling, "correct horse battery"))
            == account["id"]
        )
    async with sessionmaker() as session:
        assert await session.scalar(select(Account.email).where(Account.id == account["id"])) == composed


async def test_case_and_surrounding_spaces_make_no_other_account(client):
    tag = uuid.uuid4().hex[:8]
    email = nfc(f"zoë.z{tag}@example.com")
    account = await sign_up(client, f"  {email.upper()}\t")

    assert account["email"] == email
    for spelling in (email, email.upper(), f" {email} ", nfd(email.title())):
        taken = await client.post(
            "/accounts", json={"email": spelling, "name": "Zoë", "password": "another password"}
        )
        assert taken.status == 409, (spelling, await taken.text())
        assert (
            await account_behind(client, await sign_in(client, spelling, "correct horse battery"))
            == account["id"]
        )


async def test_the_email_column_compares_bytes_and_stays_unique(engine):
    # Alembic's model comparison ignores collations, so the migrated column is checked here.
    async with engine.connect() as connection:
        collation = await connection.scalar(
            text(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = 'accounts' AND column_name = 'email'"
            )
        )
        unique = await connection.scalar(
            text(
                "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() "
                "AND table_name = 'accounts' AND column_name = 'email' AND non_unique = 0"
            )
        )

    assert collation == "utf8mb4_bin" == Account.__table__.c.email.type.collation
    assert unique == 1


async def test_wrong_credentials_get_401(client):
    email = new_email()
    await sign_up(client, email)

    wrong_password = await client.post("/auth/token", json={"email": email, "password": "wrong password"})
    unknown_email = await client.post("/auth/token", json={"email": new_email(), "password": "whatever1"})

    assert wrong_password.status == 401
    assert unknown_email.status == 401
    assert (await wrong_password.json())["detail"] == (await unknown_email.json())["detail"]


async def test_me_needs_a_valid_unexpired_token(client, settings):
    account = await sign_up(client, new_email())
    expired = jwt.encode(
        {"sub": account["id"], "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
        settings.token_secret,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": account["id"], "iat": int(time.time()), "exp": int(time.time()) + 60},
        "some-other-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )

    for headers in (
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        response = await client.get("/accounts/me", headers=headers)
        assert response.status == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.content_type == "application/problem+json"


async def test_patch_me_changes_name_and_password(client):
    email = new_email()
    await sign_up(client, email)
    token = (
        await (
            await client.post("/auth/token", json={"email": email, "password": "correct horse battery"})
        ).json()
    )["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    response = await client.patch(
        "/accounts/me", json={"name": "Ada King", "password": "a new password"}, headers=auth
    )

    assert response.status == 200
    assert (await response.json())["name"] == "Ada King"
    assert (
        await client.post("/auth/token", json={"email": email, "password": "a new password"})
    ).status == 200
    assert (
        await client.post("/auth/token", json={"email": email, "password": "correct horse battery"})
    ).status == 401


# -- default payment method ------------------------------------------------------------------


async def signed_in(client, settings) -> tuple[dict, dict[str, str]]:
    """A fresh account and the Authorization header of a token for it.

    The token is issued directly, not through POST /auth/token, whose rate limit these tests are
    not about (tests/integration/test_gateway_limits.py is).
    """
    account = await sign_up(client, new_email())
    token = issue_token(settings, account["id"]).access_token
    return account, {"Authorization": f"Bearer {token}"}


async def stored_token(sessionmaker, account_id: str) -> str | None:
    async with sessionmaker() as session:
        return await session.scalar(select(Account.default_payment_token).where(Account.id == account_id))


async def test_signing_up_again_with_another_case_of_the_email_is_409(client):
    local = f"foo-{uuid.uuid4().hex[:12]}"
    await sign_up(client, f"{local}@x.com")

    response = await client.post(
        "/accounts", json={"email": f"{local.title()}@X.com", "name": "Foo", "password": "another password"}
    )

    assert response.status == 409, await response.text()
    assert (await response.json())["type"] == "https://orders.example/problems/account-exists"


async def test_account_shows_no_default_payment_method_until_one_is_set(client, settings, sessionmaker):
    account, auth = await signed_in(client, settings)
    assert account["default_payment_method"] is None

    response = await client.patch(
        "/accounts/me",
        headers=auth,
        json={"default_payment_method": {"method": "token", "token": "pm_card_ok"}},
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["default_payment_method"] == {"method": "token", "token": "pm_card_ok"}
    me = await (await client.get("/accounts/me", headers=auth)).json()
    assert me["default_payment_method"] == {"method": "token", "token": "pm_card_ok"}
    assert await stored_token(sessionmaker, account["id"]) == "pm_card_ok"

    # Changing something else keeps it; null clears it.
    renamed = await (await client.patch("/accounts/me", headers=auth, json={"name": "Ada B"})).json()
    assert renamed["default_payment_method"] == {"method": "token", "token": "pm_card_ok"}
    cleared = await client.patch("/accounts/me", headers=auth, json={"default_payment_method": None})
    assert cleared.status == 200
    assert (await cleared.json())["default_payment_method"] is None
    assert await stored_token(sessionmaker, account["id"]) is None


async def test_card_data_is_never_accepted_as_a_payment_method(client, settings, sessionmaker):
    account, auth = await signed_in(client, settings)
    cases = [
        ({"card_number": "4242424242424242"}, "card_number"),
        (
            {"default_payment_method": {"method": "token", "token": "4242424242424242"}},
            "default_payment_method.token",
        ),
        (
            {"default_payment_method": {"method": "token", "token": "pm_4000056655665556"}},
            "default_payment_method.token",
        ),
        (
            {"default_payment_method": {"method": "token", "token": "424242424242"}},
            "default_payment_method.token",
        ),
        (
            {"default_payment_method": {"method": "token", "token": "4242 4242 4242 4242"}},
            "default_payment_method.token",
        ),
        (
            {"default_payment_method": {"method": "token", "token": "4242-4242-4242-4242"}},
            "default_payment_method.token",
        ),
        (
            {
                "default_payment_method": {
                    "method": "token",
                    "token": "pm_card_ok",
                    "card_number": "4242424242424242",
                }
            },
            "default_payment_method.card_number",
        ),
        (
            {"default_payment_method": {"method": "token", "token": "pm_card_ok", "cvc": "123"}},
            "default_payment_method.cvc",
        ),
        (
            {"default_payment_method": {"method": "card", "number": "4242424242424242"}},
            "default_payment_method.method",
        ),
        ({"default_payment_method": {"method": "redirect"}}, "default_payment_method.method"),
        ({"default_payment_method": {"method": "token"}}, "default_payment_method.token"),
        ({"default_payment_method": {"method": "token", "token": ""}}, "default_payment_method.token"),
        ({"default_payment_method": {"method": "token", "token": "x" * 129}}, "default_payment_method.token"),
        ({"default_payment_method": "pm_card_ok"}, "default_payment_method"),
    ]
    for body, field in cases:
        response = await client.patch("/accounts/me", headers=auth, json=body)
        assert response.status == 422, (body, await response.text())
        problem = await response.json()
        assert problem["field"] == field, (body, problem)
        # The refusal does not echo what was sent.
        assert "4242" not in problem["detail"]
    assert await stored_token(sessionmaker, account["id"]) is None

    # Eleven digits are not a card number; 128 characters of token are fine.
    for token in ("pm_12345678901", "t" * 128):
        ok = await client.patch(
            "/accounts/me", headers=auth, json={"default_payment_method": {"method": "token", "token": token}}
        )
        assert ok.status == 200, await ok.text()


async def order_body(client, admin, **extra) -> dict:
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    created = await client.post(
        "/items", headers=admin, json={"sku": sku, "name": "Thing", "price_cents": 700}
    )
    assert created.status == 201, await created.text()
    return {"items": [{"sku": sku, "quantity": 1}], **extra}


async def post_order(client, auth, body):
    return await client.post("/orders", headers={**auth, "Idempotency-Key": uuid.uuid4().hex}, json=body)


async def test_an_order_without_payment_is_paid_with_the_default_token(client, settings, admin, sessionmaker):
    _, auth = await signed_in(client, settings)
    await client.patch(
        "/accounts/me",
        headers=auth,
        json={"default_payment_method": {"method": "token", "token": "pm_card_ok"}},
    )

    response = await post_order(client, auth, await order_body(client, admin))

    assert response.status == 202, await response.text()
    order = await response.json()
    assert order["payment"]["method"] == "token" and "token" not in order["payment"]
    async with sessionmaker() as session:
        payment = await session.scalar(select(Payment).where(Payment.order_id == order["id"]))
    assert (payment.method, payment.token) == ("token", "pm_card_ok")

    # A payment named in the order wins over the default.
    explicit = await post_order(client, auth, await order_body(client, admin, payment={"method": "redirect"}))
    assert explicit.status == 202, await explicit.text()
    assert (await explicit.json())["payment"]["method"] == "redirect"


async def test_an_order_without_payment_and_without_a_default_is_422(client, settings, admin, sessionmaker):
    account, auth = await signed_in(client, settings)

    for body in (await order_body(client, admin), await order_body(client, admin, payment=None)):
        response = await post_order(client, auth, body)

        assert response.status == 422, await response.text()
        problem = await response.json()
        assert problem["field"] == "payment" and "default payment method" in problem["detail"]
    async with sessionmaker() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Order).where(Order.account_id == account["id"])
            )
            == 0
        )
        # The refused request left no key behind: the same key may be used again.
        assert (
            await session.scalar(
                select(func.count())
                .select_from(IdempotencyKey)
                .where(IdempotencyKey.account_id == account["id"])
            )
            == 0
        )


async def test_an_order_paid_by_a_card_number_is_refused(client, settings, admin):
    _, auth = await signed_in(client, settings)

    response = await post_order(
        client,
        auth,
        await order_body(client, admin, payment={"method": "token", "token": "4242424242424242"}),
    )

    assert response.status == 422, await response.text()
    assert (await response.json())["field"] == "payment.token"


# -- the development token secret ------------------------------------------------------------


async def dev_secret_warnings(settings) -> list[dict]:
    """The ``auth.dev_token_secret`` lines a gateway with ``settings`` logs from start to stop."""
    with capture_logs() as logs:
        async with TestClient(TestServer(create_app(settings))) as client:
            assert (await client.get("/healthz")).status == 200
    return [line for line in logs if line["event"] == "auth.dev_token_secret"]


async def test_a_gateway_on_the_dev_token_secret_warns_once_at_start(settings):
    assert settings.token_secret == DEV_TOKEN_SECRET

    warnings = await dev_secret_warnings(settings)

    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning" and "TOKEN_SECRET" in warnings[0]["detail"]


async def test_a_gateway_with_its_own_token_secret_does_not_warn(settings):
    own = dataclasses.replace(settings, token_secret="an-unguessable-secret-of-forty-characters")

    assert await dev_secret_warnings(own) == []
