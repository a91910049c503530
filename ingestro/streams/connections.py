"""How every process connects to Redis: one place for timeouts and reconnect behaviour."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff


def redis_client(url: str, *, socket_timeout: float) -> aioredis.Redis:
    """A Redis client that reconnects by itself after a server restart.

    A command that meets a dropped connection is sent again on a new one (up to
    three tries, 50 ms to 1 s apart) instead of failing on the first use of each
    pooled connection after the restart. ``socket_timeout`` must outlast any
    blocking read made with the client.
    """
    return aioredis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[redis.exceptions.ConnectionError],
    )


def text(value: Any) -> str:
    """A Redis reply value (bytes: the clients do not decode) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
