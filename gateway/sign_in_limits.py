"""Rate limits on ``POST /auth/token``: at most ``AUTH_ATTEMPTS_PER_MINUTE`` attempts per account
email and per client address, counted in Redis.

Every attempt counts, whether it signs in or not: a guesser cannot reset its count with a
success, and the limit needs no knowledge of the outcome, so it runs before the (deliberately
slow) password check. Each counter is a fixed window: the first attempt creates the key with a
60-second expiry, later ones increment it, and ``Retry-After`` is the key's remaining lifetime.
``SET NX EX`` + ``INCR`` + ``TTL`` run as one ``MULTI`` transaction, so a key can never be left
without its expiry.

The client address is ``request.remote``: the peer of the TCP connection. Forwarded headers
(``X-Forwarded-For``) are not trusted, as anyone can send them. Behind a reverse proxy every
client thus shares the proxy's address and one budget; such a deployment needs the proxy's
address handling configured (or this limit raised) before it relies on this one.

Redis holds only what may be lost (DESIGN.md section 4): when it is unreachable, sign-in goes on
without a limit and the outage is logged; it is never a reason to refuse or fail a request.
"""

from __future__ import annotations

import asyncio
import hashlib

import redis.asyncio as redis
import structlog
from aiohttp import hdrs, web

from gateway.keys import REDIS, SETTINGS
from gateway.problems import TOO_MANY_ATTEMPTS, Problem

log = structlog.get_logger(__name__)

WINDOW_SECONDS = 60
KEY_PREFIX = "ratelimit:auth"
# However Redis fails (a dead host rather than a refused connection), sign-in waits no longer.
_REDIS_BUDGET_SECONDS = 1.0


def email_key(email: str) -> str:
    """The counter of one account email (compared lower-cased; hashed, so no address sits in Redis)."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"{KEY_PREFIX}:email:{digest}"


def address_key(address: str | None) -> str:
    """The counter of one client address."""
    return f"{KEY_PREFIX}:addr:{address or 'unknown'}"


async def count_attempt(client: redis.Redis, keys: list[str], limit: int,
                        window_seconds: int = WINDOW_SECONDS) -> int | None:
    """Count one attempt on each of ``keys``; seconds until the caller may retry when any is past ``limit``.

    None when the attempt is within every limit. Raises what Redis raises.
    """
    async with client.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.set(key, 0, ex=window_seconds, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
        results = await pipe.execute()
    retry_after = None
    for index, key in enumerate(keys):
        count, ttl = results[3 * index + 1], results[3 * index + 2]
        if ttl < 0:  # a counter without expiry (only if someone wrote the key by hand): give it one
            await client.expire(key, window_seconds)
            ttl = window_seconds
        if count > limit:
            retry_after = max(retry_after or 0, max(int(ttl), 1))
    return retry_after


async def check_sign_in_rate(request: web.Request, email: str) -> None:
    """Count this sign-in attempt; a 429 problem with ``Retry-After`` when it is one too many."""
    limit = request.app[SETTINGS].auth_attempts_per_minute
    address = request.remote
    try:
        async with asyncio.timeout(_REDIS_BUDGET_SECONDS):
            retry_after = await count_attempt(request.app[REDIS], [email_key(email), address_key(address)], limit)
    except (redis.RedisError, OSError, TimeoutError) as error:
        log.warning("auth.rate_limit_unavailable", error=repr(error))
        return
    if retry_after is not None:
        log.info("auth.rate_limited", client_address=address, retry_after=retry_after)
        raise Problem(TOO_MANY_ATTEMPTS, f"too many sign-in attempts for this account or from this address "
                                         f"(at most {limit} a minute); retry in {retry_after} seconds",
                      headers={hdrs.RETRY_AFTER: str(retry_after)})
