"""Customer tokens: verified by PyJWT once, then remembered, with the expiry checked on every use."""

from __future__ import annotations

import dataclasses
import time
import uuid

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from config.settings import Settings
from gateway.http import auth
from gateway.http.auth import authenticated_account_id, issue_token
from gateway.http.problems import Problem
from gateway.keys import SETTINGS

SETTINGS_ = Settings(token_secret="a-test-token-secret-of-at-least-32-chars")


def request_with(token: str, settings: Settings = SETTINGS_) -> web.Request:
    app = web.Application()
    app[SETTINGS] = settings
    return make_mocked_request("GET", "/accounts/me", headers={"Authorization": f"Bearer {token}"}, app=app)


def refused(token: str, settings: Settings = SETTINGS_) -> str:
    with pytest.raises(Problem) as error:
        authenticated_account_id(request_with(token, settings))
    assert (
        error.value.status == 401
        and error.value.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    )
    return error.value.detail


def test_a_valid_token_names_its_account_every_time():
    account_id = uuid.uuid4().hex
    token = issue_token(SETTINGS_, account_id).access_token
    assert [authenticated_account_id(request_with(token)) for _ in range(3)] == [account_id] * 3


def test_a_remembered_token_still_expires(monkeypatch):
    now = int(time.time())
    token = jwt.encode(
        {"sub": "account-1", "iat": now, "exp": now + 30}, SETTINGS_.token_secret, algorithm="HS256"
    )
    assert authenticated_account_id(request_with(token)) == "account-1"

    monkeypatch.setattr(time, "time", lambda: now + 30.0)  # the second exp names: expired, as PyJWT says

    assert refused(token) == "the access token has expired"


def test_a_token_is_only_valid_under_the_secret_that_signed_it():
    token = issue_token(SETTINGS_, "account-1").access_token
    assert authenticated_account_id(request_with(token)) == "account-1"
    other = dataclasses.replace(SETTINGS_, token_secret="another-test-token-secret-of-32-chars!")
    assert refused(token, other) == "the access token is not valid"


def test_invalid_tokens_are_refused_every_time_and_never_remembered():
    now = int(time.time())
    secret = SETTINGS_.token_secret
    forged = issue_token(dataclasses.replace(SETTINGS_, token_secret="x" * 40), "account-1").access_token
    expired = jwt.encode(
        {"sub": "account-1", "iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256"
    )
    no_subject = jwt.encode({"sub": "", "iat": now, "exp": now + 60}, secret, algorithm="HS256")
    no_expiry = jwt.encode({"sub": "account-1", "iat": now}, secret, algorithm="HS256")
    before = auth._verified.cache_info().currsize
    for _ in range(2):
        assert refused(forged) == "the access token is not valid"
        assert refused(expired) == "the access token has expired"
        assert refused(no_subject) == "the access token is not valid"
        assert refused(no_expiry) == "the access token is not valid"
        assert refused("not-a-jwt") == "the access token is not valid"
    assert auth._verified.cache_info().currsize == before
