"""Who is calling: customer access tokens (HS256 JWTs) and the operator's admin token.

A customer token's ``sub`` is the account id; it expires after ``TOKEN_TTL_SECONDS``. Admin
endpoints take ``Authorization: Bearer $ADMIN_TOKEN``. Missing or unusable credentials answer
401 with ``WWW-Authenticate: Bearer``; valid credentials without the right answer 403.
Order endpoints accept either kind (:func:`customer_or_admin`): the operator sees every order.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

import jwt
import structlog
from aiohttp import hdrs, web
from msgspec import Meta, Struct

from config.settings import Settings
from gateway.http.problems import INVALID_TOKEN, Problem
from gateway.keys import SETTINGS

ALGORITHM = "HS256"


class Token(Struct):
    """A bearer token for the customer endpoints, and how long it lasts"""

    access_token: Annotated[str, Meta(description="Send as `Authorization: Bearer <access_token>`")]
    token_type: Literal["bearer"]
    expires_in: Annotated[int, Meta(ge=1, description="Seconds")]


def issue_token(settings: Settings, account_id: str) -> Token:
    """The ``POST /auth/token`` answer for ``account_id``: a signed bearer token and its lifetime."""
    now = int(time.time())
    claims = {"sub": account_id, "iat": now, "exp": now + settings.token_ttl_seconds}
    token = jwt.encode(claims, settings.token_secret, algorithm=ALGORITHM)
    return Token(access_token=token, token_type="bearer", expires_in=settings.token_ttl_seconds)


def _challenge(error: str | None = None) -> dict[str, str]:
    value = "Bearer" if error is None else f'Bearer error="{error}"'
    return {hdrs.WWW_AUTHENTICATE: value}


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None when there is no such header.

    Raises a 401 problem for a header that is present but not a usable bearer credential.
    """
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Problem(401, "the Authorization header must be 'Bearer <token>'", headers=_challenge())
    token = token.strip()
    # Tokens are printable ASCII; anything else cannot match and must not reach the decoders.
    if not token or not token.isascii() or not token.isprintable():
        raise Problem(
            INVALID_TOKEN, "the bearer token is empty or malformed", headers=_challenge("invalid_token")
        )
    return token


def authenticated_account_id(request: web.Request) -> str:
    """The account id of the customer token on ``request``; 401 when missing, invalid or expired."""
    token = bearer_token(request)
    if token is None:
        raise Problem(
            401, "this endpoint needs an access token (Authorization: Bearer <token>)", headers=_challenge()
        )
    return _account_id(request, token)


#: Tokens whose signature and claims were verified, remembered so that a customer's next requests
#: skip PyJWT's decoding (about a tenth of a millisecond of CPU each). Only valid tokens get in: a
#: forged or malformed one is decoded, and refused, every time.
VERIFIED_TOKENS_CACHED = 16384


class _NotACustomerToken(Exception):
    """A correctly signed token whose ``sub`` is no account id."""


@lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _verified(secret: str, token: str) -> tuple[str, int]:
    """The account id and expiry (``exp``) of a token signed with ``secret``; raises when invalid.

    Whether a token is valid apart from its expiry never changes: the signature, the algorithm,
    the claims required and their types, and ``iat``/``nbf`` (once past, they stay past). So the
    answer is cached, exceptions are not, and the expiry is checked again on every use.
    """
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat"]})
    account_id = claims["sub"]
    if not isinstance(account_id, str) or not account_id:
        raise _NotACustomerToken
    # PyJWT has checked that exp is an integer (or a string of one) and not yet past.
    return account_id, int(claims["exp"])


def _account_id(request: web.Request, token: str) -> str:
    """The account id a customer token was issued for; 401 when it is invalid or expired."""
    try:
        account_id, expires = _verified(request.app[SETTINGS].token_secret, token)
    except jwt.ExpiredSignatureError:
        raise Problem(
            INVALID_TOKEN, "the access token has expired", headers=_challenge("invalid_token")
        ) from None
    except (jwt.PyJWTError, _NotACustomerToken):
        raise Problem(
            INVALID_TOKEN, "the access token is not valid", headers=_challenge("invalid_token")
        ) from None
    # Expired from the second ``exp`` names on, as PyJWT decides.
    if expires <= time.time():
        raise Problem(INVALID_TOKEN, "the access token has expired", headers=_challenge("invalid_token"))
    structlog.contextvars.bind_contextvars(account_id=account_id)
    return account_id


def _is_admin_token(request: web.Request, token: str) -> bool:
    # Constant-time: the comparison must not reveal how much of a guess was right.
    return hmac.compare_digest(token.encode(), request.app[SETTINGS].admin_token.encode())


@dataclass(frozen=True)
class Caller:
    """Who is asking about an order: a customer (their account id) or the operator (``None``)."""

    account_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.account_id is None

    def may_see(self, owner_id: str) -> bool:
        """Whether this caller may see or act on an order of account ``owner_id``."""
        return self.is_admin or self.account_id == owner_id


def customer_or_admin(request: web.Request) -> Caller:
    """The caller behind a customer token or the admin token; 401 without usable credentials."""
    token = bearer_token(request)
    if token is None:
        raise Problem(
            401, "this endpoint needs an access token (Authorization: Bearer <token>)", headers=_challenge()
        )
    if _is_admin_token(request, token):
        return Caller(account_id=None)
    return Caller(account_id=_account_id(request, token))


def require_admin(request: web.Request) -> None:
    """Let the request through only with the admin token: 401 without credentials, 403 with others."""
    token = bearer_token(request)
    if token is None:
        raise Problem(
            401, "this endpoint needs the admin token (Authorization: Bearer <token>)", headers=_challenge()
        )
    if not _is_admin_token(request, token):
        raise Problem(403, "this endpoint is for operators only")
