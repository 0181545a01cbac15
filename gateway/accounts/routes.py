"""Customer accounts and sign-in: ``POST /accounts``, ``POST /auth/token``, ``GET``/``PATCH /accounts/me``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from msgspec import UNSET
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from gateway.accounts import schemas
from gateway.accounts.schemas import AccountChanges, Credentials, NewAccount
from gateway.accounts.sign_in_limits import begin_sign_in
from gateway.http.auth import authenticated_account_id, issue_token
from gateway.http.bodies import read_body
from gateway.http.db_errors import is_duplicate_key
from gateway.http.problems import ACCOUNT_EXISTS, INVALID_CREDENTIALS, INVALID_TOKEN, Problem
from gateway.http.responses import json_response
from gateway.keys import PASSWORDS, SESSIONMAKER, SETTINGS
from gateway.payments.methods import default_payment_method
from models.clock import isoformat, utcnow
from models.identity import normalize_email
from models.tables import Account

routes = web.RouteTableDef()


@routes.post("/accounts")
async def create_account(request: web.Request) -> web.Response:
    """Open an account; 409 when the email is taken.

    Emails are compared exactly in their canonical form (:func:`models.identity.normalize_email`):
    ``Zoë@`` and ``zoë@`` are one account, ``zoe@`` and ``zoë@`` are two.
    """
    new = await read_body(request, NewAccount)
    password_hash = await request.app[PASSWORDS].hash(new.password)
    now = utcnow()
    account = Account(
        email=new.email,
        name=new.name,
        password_hash=password_hash,
        shipping_address=None if new.shipping_address is UNSET else new.shipping_address,
        billing_address=None if new.billing_address is UNSET else new.billing_address,
        created_at=now,
        updated_at=now,
    )
    try:
        async with request.app[SESSIONMAKER]() as session, session.begin():
            session.add(account)
    except IntegrityError as exc:
        if is_duplicate_key(exc):
            raise Problem(ACCOUNT_EXISTS, "an account with this email already exists") from None
        raise
    return json_response(_account_document(account), status=201, headers={"Location": "/accounts/me"})


def _account_document(account: Account) -> schemas.Account:
    """The account as its owner sees it, with its default payment method (the token, no card data)."""
    return schemas.Account(
        id=account.id,
        email=account.email,
        name=account.name,
        shipping_address=account.shipping_address,
        billing_address=account.billing_address,
        default_payment_method=default_payment_method(account),
        created_at=isoformat(account.created_at),
        updated_at=isoformat(account.updated_at),
    )


@routes.post("/auth/token")
async def create_token(request: web.Request) -> web.Response:
    """Exchange email and password for an access token; 401 on any mismatch.

    The email is looked up in its canonical form, as sign-up stored it (and as the limit counts it).

    429 (with ``Retry-After``) while the email is locked after ``AUTH_MAX_FAILURES_PER_ACCOUNT``
    failed sign-ins, or the client address after ``AUTH_MAX_FAILURES_PER_ADDRESS``, within
    ``AUTH_FAILURE_WINDOW_SECONDS`` (gateway/accounts/sign_in_limits.py): even the right password is then
    refused, and before any hash is spent. Successes never count; one resets the email's count.
    """
    credentials = await read_body(request, Credentials)
    passwords = request.app[PASSWORDS]
    sessionmaker = request.app[SESSIONMAKER]
    async with sessionmaker() as session:
        account = await session.scalar(
            select(Account).where(Account.email == normalize_email(credentials.email))
        )
    # Counted as a failure from here until it succeeds (a database outage before it counts nothing).
    attempt = await begin_sign_in(request, credentials.email)
    # Hashing takes a while: it runs with no database connection held.
    if account is None:
        await passwords.verify_nothing(credentials.password)
        raise Problem(INVALID_CREDENTIALS, "email or password is wrong")
    if not await passwords.verify(account.password_hash, credentials.password):
        raise Problem(INVALID_CREDENTIALS, "email or password is wrong")
    await attempt.succeeded()
    if passwords.needs_rehash(account.password_hash):
        new_hash = await passwords.hash(credentials.password)
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Account).where(Account.id == account.id).values(password_hash=new_hash)
            )
    return json_response(issue_token(request.app[SETTINGS], account.id))


async def _own_account(request: web.Request, session) -> Account:
    account = await session.get(Account, authenticated_account_id(request))
    if account is None:
        # A valid signature for an account that no longer exists: the token is of no use.
        raise Problem(
            INVALID_TOKEN,
            "the access token's account does not exist",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return account


@routes.get("/accounts/me")
async def get_me(request: web.Request) -> web.Response:
    """The caller's own account."""
    async with request.app[SESSIONMAKER]() as session:
        account = await _own_account(request, session)
    return json_response(_account_document(account))


def _changed_columns(changes: AccountChanges) -> dict[str, Any]:
    """The fields the client sent, by name (``null`` kept as None: it clears the field)."""
    return {
        field: value for field in changes.__struct_fields__ if (value := getattr(changes, field)) is not UNSET
    }


@routes.patch("/accounts/me")
async def update_me(request: web.Request) -> web.Response:
    """Change name, password, addresses or default payment method (``null`` clears all but the first two)."""
    authenticated_account_id(request)  # 401 before reading a body that may not be ours to read
    changes = _changed_columns(await read_body(request, AccountChanges))
    if "password" in changes:
        changes["password_hash"] = await request.app[PASSWORDS].hash(changes.pop("password"))
    if "default_payment_method" in changes:
        method = changes.pop("default_payment_method")
        changes["default_payment_token"] = None if method is None else method.token
    async with request.app[SESSIONMAKER]() as session, session.begin():
        account = await _own_account(request, session)
        for field, value in changes.items():
            setattr(account, field, value)
        if changes:
            account.updated_at = utcnow()
    return json_response(_account_document(account))
