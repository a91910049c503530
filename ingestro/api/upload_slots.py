"""Each API key's uploads at once: at most ``INGESTRO_MAX_CONCURRENT_UPLOADS``, over every API process.

A key's uploads in progress are leases in one Redis sorted set (member: the upload, score: when
its lease ends, by Redis's clock). An upload takes a lease before its body is read and gives it
back when answered; while it is received, its lease is renewed every third of ``LEASE_S``, so
a long upload keeps its place and the lease of an API process that died ends by itself within
``LEASE_S``. One more upload than allowed is a 429 with ``Retry-After``. Limits are per API key:
in insecure mode (no keys) there are none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.auth import Endpoint, caller_of
from ingestro.api.context import AppContext
from ingestro.api.problems import Problem
from ingestro.streams.names import uploads_key

log = logging.getLogger(__name__)

LEASE_S = 60.0
#: What a refused upload is told to wait: uploads take seconds to minutes; there is no telling which.
RETRY_AFTER_S = 5

_NOW = "local time = redis.call('TIME') local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)"
# KEYS[1]: the key's leases; ARGV: upload, limit, lease ms. Returns 1 when the lease was taken, else 0.
_TAKE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
)
# KEYS[1]: the key's leases; ARGV: upload, lease ms. Extends a lease still held.
_RENEW = (
    _NOW
    + """
if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 1
"""
)


async def take_lease(redis: aioredis.Redis, caller: str, upload: str, limit: int, lease_s: float = LEASE_S) -> bool:
    """Take a lease for ``upload`` unless ``caller`` holds ``limit`` live ones already."""
    taken = await redis.register_script(_TAKE)(keys=[uploads_key(caller)], args=[upload, limit, int(lease_s * 1000)])
    return bool(taken)


async def give_back(redis: aioredis.Redis, caller: str, upload: str) -> None:
    await redis.zrem(uploads_key(caller), upload)


async def _renew(redis: aioredis.Redis, caller: str, upload: str, lease_s: float) -> None:
    renew = redis.register_script(_RENEW)
    while True:
        await asyncio.sleep(lease_s / 3)
        try:
            await renew(keys=[uploads_key(caller)], args=[upload, int(lease_s * 1000)])
        except Exception as error:  # a blip must not end the upload; the next round tries again
            log.warning("could not renew an upload's lease", extra={"error": str(error)})


def limiting_uploads(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` (``POST /upload``), refused with a 429 while the caller's key sends its limit of uploads."""

    async def limited(request: Request) -> Response:
        context: AppContext = request.app.state.context
        caller, limit = caller_of(request).key_id, context.settings.max_concurrent_uploads
        if caller is None or limit == 0:
            return await endpoint(request)
        upload = uuid.uuid4().hex
        if not await take_lease(context.redis, caller, upload, limit):
            raise Problem(
                429,
                "Too Many Requests",
                f"this API key is sending {limit} uploads already (INGESTRO_MAX_CONCURRENT_UPLOADS);"
                " retry when one is done",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        renewing = asyncio.create_task(_renew(context.redis, caller, upload, LEASE_S))
        try:
            return await endpoint(request)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)  # its cancellation, not ours, is swallowed
            with contextlib.suppress(Exception):  # when Redis is down, the lease ends by itself
                await give_back(context.redis, caller, upload)

    return limited
