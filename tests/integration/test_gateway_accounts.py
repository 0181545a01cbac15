"""Accounts and sign-in through the gateway, on the real database."""

from __future__ import annotations

import time
import uuid

import jwt



def new_email() -> str:
    return f"Buyer-{uuid.uuid4().hex[:12]}@Example.com"


async def sign_up(client, email: str, password: str = "correct horse battery") -> dict:
    response = await client.post("/accounts", json={"email": email, "name": "Ada", "password": password})
    assert response.status == 201, await response.text()
    return await response.json()


async def test_account_is_created_without_its_password(client):
    email = new_email()
    response = await client.post("/accounts", json={
        "email": email, "name": "Ada Lovelace", "password": "correct horse battery",
        "shipping_address": {"line1": "12 St James's Sq", "city": "London", "country": "GB"},
    })

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

    response = await client.post("/accounts", json={"email": email.upper(), "name": "Eve",
                                                    "password": "another password"})

    assert response.status == 409
    assert response.content_type == "application/problem+json"


async def test_bad_fields_are_named_in_a_422_problem(client):
    cases = [
        ({"email": new_email(), "name": "Ada", "password": "short"}, "password"),
        ({"email": "not-an-email", "name": "Ada", "password": "long enough"}, "email"),
        ({"email": new_email(), "name": "", "password": "long enough"}, "name"),
        ({"email": new_email(), "password": "long enough"}, "name"),
        ({"email": new_email(), "name": "Ada", "password": "long enough", "shipping_address": "here"},
         "shipping_address"),
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

    response = await client.post("/auth/token", json={"email": email.upper(), "password": "correct horse battery"})
    assert response.status == 200
    token = await response.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] > 0

    me = await client.get("/accounts/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status == 200
    assert (await me.json())["id"] == account["id"]


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
    expired = jwt.encode({"sub": account["id"], "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
                         settings.token_secret, algorithm="HS256")
    forged = jwt.encode({"sub": account["id"], "iat": int(time.time()), "exp": int(time.time()) + 60},
                        "some-other-secret-that-is-long-enough-for-hs256", algorithm="HS256")

    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": f"Bearer {expired}"},
                    {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = await client.get("/accounts/me", headers=headers)
        assert response.status == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.content_type == "application/problem+json"


async def test_patch_me_changes_name_and_password(client):
    email = new_email()
    await sign_up(client, email)
    token = (await (await client.post("/auth/token", json={"email": email, "password": "correct horse battery"}))
             .json())["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    response = await client.patch("/accounts/me", json={"name": "Ada King", "password": "a new password"},
                                  headers=auth)

    assert response.status == 200
    assert (await response.json())["name"] == "Ada King"
    assert (await client.post("/auth/token", json={"email": email, "password": "a new password"})).status == 200
    assert (await client.post("/auth/token", json={"email": email, "password": "correct horse battery"})).status == 401
