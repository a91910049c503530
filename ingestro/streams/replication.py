"""Writes a failover cannot take back: ``WAIT`` for replicas before the entry that caused them is acked.

Redis replicates asynchronously: a master that dies can take acknowledged XADDs with it when its
replica is promoted. With ``INGESTRO_REDIS_WAIT_REPLICAS`` = N > 0, every publish ends, on each
connection that wrote (one per cluster node written to), with ``WAIT N`` in the same round trip;
when fewer than N replicas confirm within ``WAIT_TIMEOUT_MS`` the publish raises ``NotReplicated``,
an outage (``ingestro.streams.outages``): the handler is retried in place, counting nothing, and its
source entry stays unacked. Every consumer acks only after its handler returned, so an acked entry's
consequences are on N replicas, and a promoted replica holds them. What the failover still takes (an
XREADGROUP delivery, an XACK) only makes an entry delivered again, which the idempotent consumers
absorb.

The requirement travels with the client (``require_replicas``, set where the client is built), so
every publish made with it waits, whoever calls; so does every other append whose source is then acked
or deleted (``append``: a dead letter, a redriven entry).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

#: How long one WAIT blocks for its replicas before the publish is declared not replicated (and retried).
WAIT_TIMEOUT_MS = 2000

_REQUIRED: weakref.WeakKeyDictionary[aioredis.Redis, int] = weakref.WeakKeyDictionary()


class NotReplicated(Exception):
    """Fewer replicas than required confirmed a write within ``WAIT_TIMEOUT_MS``: an outage, retried in place."""


def require_replicas(client: aioredis.Redis, replicas: int) -> None:
    """Make every publish with ``client`` wait for ``replicas`` replicas (0: none)."""
    if replicas:
        _REQUIRED[client] = replicas
    else:
        _REQUIRED.pop(client, None)


def replicas_required(client: aioredis.Redis) -> int:
    """The replicas a publish with ``client`` waits for (0: it does not wait)."""
    return _REQUIRED.get(client, 0)


def queue_waits(client: aioredis.Redis, pipe: Any, streams: Iterable[str]) -> int:
    """Append to ``pipe`` (a non-transactional pipeline of ``client`` holding writes to ``streams``) one WAIT per
    connection that will carry those writes, and return how many (their replies come last, in order)."""
    replicas = replicas_required(client)
    if not replicas:
        return 0
    if not isinstance(client, RedisCluster):
        pipe.execute_command("WAIT", replicas, WAIT_TIMEOUT_MS)
        return 1
    nodes: dict[str, ClusterNode] = {}
    for stream in streams:
        node = client.get_node_from_key(stream)
        if node is not None:
            nodes.setdefault(node.name, node)
    for node in nodes.values():
        # Sent to the node holding the streams, it goes on the connection its writes go on: WAIT counts the
        # replicas that confirmed this connection's writes.
        pipe.execute_command("WAIT", replicas, WAIT_TIMEOUT_MS, target_nodes=node)
    return len(nodes)


def check_waits(client: aioredis.Redis, replies: Sequence[Any]) -> None:
    """Raise ``NotReplicated`` unless every WAIT reply (``queue_waits``' last replies) reached the replicas."""
    replicas = replicas_required(client)
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
        if int(reply) < replicas:
            raise NotReplicated(
                f"{int(reply)} of {replicas} replicas confirmed a write within {WAIT_TIMEOUT_MS} ms"
                " (INGESTRO_REDIS_WAIT_REPLICAS)"
            )


async def append(client: aioredis.Redis, stream: str, fields: Any) -> str:
    """XADD ``fields`` to ``stream`` and, with replicas required of ``client``, WAIT for them in the same round
    trip (else raise ``NotReplicated``); return the new entry's id. For an entry whose source is then deleted
    or acked (a dead letter, a redriven one): a failover must not take it back after its source is gone."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.xadd(stream, fields)
        waits = queue_waits(client, pipe, [stream])
        replies = await pipe.execute()
    check_waits(client, replies[len(replies) - waits :])
    entry_id = replies[0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
