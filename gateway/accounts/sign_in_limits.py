"""Limits on ``POST /auth/token``: failed sign-ins are counted, per account and per client address, in Redis.

- **Per account** (its email): after ``AUTH_MAX_FAILURES_PER_ACCOUNT`` failed attempts within
  ``AUTH_FAILURE_WINDOW_SECONDS`` the account is locked until that window ends. While it is
  locked every attempt is refused with 429, the right password too: were the right password let
  through, the lock would only tell a guesser when it had guessed right. A successful sign-in
  resets the account's count. Emails without an account count like any other, so the answers do
  not tell which accounts exist.
- **Per client address** (:mod:`gateway.http.client_address`, which believes ``X-Forwarded-For`` from
  ``TRUSTED_PROXIES`` only): ``AUTH_MAX_FAILURES_PER_ADDRESS`` failed attempts within the window,
  over all accounts, lock the address the same way; it stops one host guessing across many
  accounts. A success neither counts nor resets it (one good account of its own would otherwise
  reset a guesser's budget).

Successes never count, so any number of customers behind one address (a shop's own frontend
server, an office behind NAT, a mobile carrier's shared address, a load balancer) sign in as often
as they need.

An attempt takes a place in both counters *before* its password is checked and gives it back
when it succeeds; a failure keeps it. So parallel guesses cannot all pass the check before the
first of them is counted: at most the limit are ever checked, and a locked guesser costs no hash.
A refused attempt takes no place (it neither counts nor lengthens a lock). Each counter is a
fixed window: the place that creates the key gives it the window as its expiry, and
``Retry-After`` is the remaining lifetime of the full counter. Each step is one Lua script, so
check, increment and expiry happen together and a key never lacks its expiry.

Redis holds only what may be lost (docs/architecture.md, "Redis"): when it is unreachable, sign-in goes on
without limits and the outage is logged; it is never a reason to refuse or fail a request.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import redis.asyncio as redis
import structlog
from aiohttp import hdrs, web

from gateway.http.client_address import request_client_address
from gateway.http.problems import TOO_MANY_ATTEMPTS, Problem
from gateway.keys import REDIS, SETTINGS
from models.identity import normalize_email

log = structlog.get_logger(__name__)

KEY_PREFIX = "signin:failures"
# However Redis fails (a dead host rather than a refused connection), sign-in waits no longer.
_REDIS_BUDGET_SECONDS = 1.0

# KEYS: the counters; ARGV: each counter's limit, then the window in seconds. Returns, per
# counter, the seconds until it has room again (0: room now). Only when every counter has room
# does the attempt take a place in each.
_TAKE_PLACES = """
local window = tonumber(ARGV[#KEYS + 1])
local waits, full = {}, false
for i, key in ipairs(KEYS) do
  waits[i] = 0
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i]) then
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, window)
      ttl = window
    end
    waits[i] = math.max(ttl, 1)
    full = true
  end
end
if not full then
  for _, key in ipairs(KEYS) do
    redis.call('INCR', key)
    if redis.call('TTL', key) < 0 then
      redis.call('EXPIRE', key, window)
    end
  end
end
return waits
"""

# KEYS[1]: the account's counter, reset; KEYS[2]: the address's, given its place back. A counter
# that expired meanwhile stays gone (DECR would recreate it without an expiry).
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
"""


def email_key(email: str) -> str:
    """The counter of one account email (normalised as accounts are; hashed, so no address sits in Redis)."""
    digest = hashlib.sha256(normalize_email(email).encode("utf-8")).hexdigest()[:32]
    return f"{KEY_PREFIX}:email:{digest}"


def address_key(address: str | None) -> str:
    """The counter of one client address."""
    return f"{KEY_PREFIX}:addr:{address or 'unknown'}"


@dataclass(frozen=True)
class SignInAttempt:
    """One attempt's places in the counters: unless told it succeeded, it stays a failure."""

    client: redis.Redis | None  # None: Redis was unreachable, nothing was counted
    account_key: str
    address_key: str

    async def succeeded(self) -> None:
        """Reset the account's count and give the address its place back."""
        if self.client is None:
            return
        try:
            async with asyncio.timeout(_REDIS_BUDGET_SECONDS):
                # Registering only hashes the text; Redis keeps the script once it has seen it.
                await self.client.register_script(_SUCCEEDED)(keys=[self.account_key, self.address_key])
        except (redis.RedisError, OSError, TimeoutError) as error:
            log.warning("auth.sign_in_limits_unavailable", error=repr(error))


async def begin_sign_in(request: web.Request, email: str) -> SignInAttempt:
    """Count a sign-in attempt as a failure until it succeeds; 429 with ``Retry-After`` while the
    account or the client address is locked."""
    settings = request.app[SETTINGS]
    address = request_client_address(request)
    client = request.app[REDIS]
    keys = [email_key(email), address_key(address)]
    limits = [settings.auth_max_failures_per_account, settings.auth_max_failures_per_address]
    window = settings.auth_failure_window_seconds
    try:
        async with asyncio.timeout(_REDIS_BUDGET_SECONDS):
            account_wait, address_wait = await client.register_script(_TAKE_PLACES)(
                keys=keys, args=[*limits, window]
            )
    except (redis.RedisError, OSError, TimeoutError) as error:
        log.warning("auth.sign_in_limits_unavailable", error=repr(error))
        return SignInAttempt(None, *keys)
    if account_wait or address_wait:
        retry_after = max(account_wait, address_wait)
        locked = [what for what, wait in (("account", account_wait), ("address", address_wait)) if wait]
        log.info("auth.sign_in_locked", client_address=address, locked=locked, retry_after=retry_after)
        raise Problem(
            TOO_MANY_ATTEMPTS,
            _lock_detail(account_wait, address_wait, limits, window),
            headers={hdrs.RETRY_AFTER: str(retry_after)},
        )
    return SignInAttempt(client, *keys)


def _lock_detail(account_wait: int, address_wait: int, limits: list[int], window: int) -> str:
    reasons = []
    if account_wait:
        reasons.append(f"this account is locked after {limits[0]} failed sign-ins")
    if address_wait:
        reasons.append(f"this address is locked after {limits[1]} failed sign-ins")
    return (
        f"{' and '.join(reasons)} within {window} seconds; retry in {max(account_wait, address_wait)} seconds"
    )
