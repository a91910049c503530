"""Each API key's request rate: a token bucket in Redis, so that every API process shares it.

A key's bucket holds up to ``INGESTRO_RATE_BURST`` tokens and refills at ``INGESTRO_RATE_LIMIT``
per second; each request takes one, and a request finding none is a 429 whose ``Retry-After``
says when the next token is due. The bucket is one Redis hash updated by one Lua script, timed
by Redis's clock (``TIME``), so API processes on hosts whose clocks differ agree, and no two
requests take the same token. Limits are per API key: in insecure mode (no keys) there are none.

Redis unreachable: requests are let through (logged). Reading a job needs only PostgreSQL, and a
rate limit is no reason to refuse what could be answered; uploads need Redis anyway.
"""

from __future__ import annotations

import logging
import math

import redis.asyncio as aioredis

from ingestro.api.problems import Problem
from ingestro.streams.names import rate_limit_key
from ingestro.streams.outages import is_outage

log = logging.getLogger(__name__)

# KEYS[1]: the bucket; ARGV: rate (tokens/s), burst. Returns 0 (a token taken) or the ms until one is due.
_TAKE_TOKEN = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
-- a full bucket is the same as none: let idle keys' buckets go
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""  # noqa: S105 - a Lua script, not a password


async def take_token(redis: aioredis.Redis, caller: str, rate: float, burst: int) -> int:
    """Take a token from ``caller``'s bucket: 0 when taken, else the milliseconds until one is due."""
    script = redis.register_script(_TAKE_TOKEN)
    wait_ms = await script(keys=[rate_limit_key(caller)], args=[repr(rate), burst])
    return int(wait_ms)


async def check_rate(redis: aioredis.Redis, caller: str | None, rate: float, burst: int) -> None:
    """Count a request of ``caller`` (an API key id; None: insecure mode, not limited); 429 past its rate."""
    if caller is None or rate <= 0:
        return
    try:
        wait_ms = await take_token(redis, caller, rate, burst)
    except Exception as error:
        if not is_outage(error):
            raise
        log.warning("redis unreachable; the request is not rate limited", extra={"error": str(error)})
        return
    if wait_ms:
        raise Problem(
            429,
            "Too Many Requests",
            f"this API key made more than {rate:g} requests per second (bursts up to {burst}); retry later",
            {"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
        )
