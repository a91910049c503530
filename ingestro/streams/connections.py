"""How every process connects to Redis: the one place that builds a client, for a single server or a cluster, with
its timeouts and reconnect behaviour."""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ingestro.config import Settings
from ingestro.streams.replication import require_replicas


def redis_client(settings: Settings, *, socket_timeout: float) -> aioredis.Redis:
    """A Redis client for ``settings.redis_url``, that reconnects by itself after a server restart.

    In ``cluster`` mode (``INGESTRO_REDIS_MODE``) the URL names one node; the client discovers the others, sends
    each command to the node holding its slot and follows MOVED/ASK redirections. Every command the code sends
    names keys of one slot (see ``ingestro.streams.names``), so both clients serve it alike: the cluster client is
    typed as the single-server one it stands in for.

    A command that meets a dropped connection is sent again on a new one (up to
    three tries, 50 ms to 1 s apart) instead of failing on the first use of each
    pooled connection after the restart. ``socket_timeout`` must outlast any
    blocking read made with the client. Every publish with the client waits for ``INGESTRO_REDIS_WAIT_REPLICAS``
    replicas (``ingestro.streams.replication``).
    """
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 3)
    if settings.redis_mode == "cluster":
        cluster = RedisCluster.from_url(
            settings.redis_url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5,
            retry=retry,
            retry_on_error=[redis.exceptions.ConnectionError],
        )
        client = cast(aioredis.Redis, cluster)
    else:
        client = aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5,
            retry=retry,
            retry_on_error=[redis.exceptions.ConnectionError],
        )
    require_replicas(client, settings.redis_wait_replicas)
    return client


def text(value: Any) -> str:
    """A Redis reply value (bytes: the clients do not decode) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
