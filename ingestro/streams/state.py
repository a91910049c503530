"""Where each consumer group stands on a stream, read from Redis (XINFO GROUPS and XPENDING).

One reading serves the metrics collector, ``ingestro streams`` and retention, so
they all agree on what a group has read and still holds.
"""

from __future__ import annotations

from typing import Any

import attrs
import redis.asyncio as aioredis

from ingestro.streams.connections import text


@attrs.frozen
class GroupState:
    """One consumer group on one stream."""

    name: str
    #: The newest entry delivered to the group; every later entry is not yet delivered.
    last_delivered_id: str
    #: Entries not yet delivered; None when Redis cannot tell (entries deleted past the group's position).
    lag: int | None
    #: Entries delivered but not acked.
    pending: int
    #: The lowest pending id (every entry below it was acked), or None when nothing is pending.
    oldest_pending_id: str | None
    #: Time since the oldest pending entry was last delivered (0 when none is pending).
    oldest_pending_idle_s: float
    consumers: int


async def read_groups(redis: aioredis.Redis, stream: str) -> list[GroupState]:
    """Every consumer group of ``stream``; none when the stream does not exist."""
    if not await redis.exists(stream):
        return []  # XINFO GROUPS refuses a missing key
    groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    states = []
    for group in groups:
        name = text(group["name"])
        oldest_id, idle_s = None, 0.0
        if group["pending"]:
            # The pending list is ordered by id: its first entry is the lowest one still pending.
            oldest = await redis.xpending_range(stream, name, "-", "+", 1)
            if oldest:
                oldest_id = text(oldest[0]["message_id"])
                idle_s = int(oldest[0]["time_since_delivered"]) / 1000
        states.append(
            GroupState(
                name=name,
                last_delivered_id=text(group["last-delivered-id"]),
                # Redis 7 reports lag as nil when entries were deleted past the group's position.
                lag=group.get("lag"),
                pending=int(group["pending"]),
                oldest_pending_id=oldest_id,
                oldest_pending_idle_s=idle_s,
                consumers=int(group["consumers"]),
            )
        )
    return states
