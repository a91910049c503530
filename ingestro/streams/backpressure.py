"""Backpressure: the parser waits while a row stream holds too many entries its readers have not acked.

A row stream's backlog is the most entries any consumer group reading it has not acked yet: that
group's lag (not yet delivered) plus its pending entries (delivered, not acked), from one XINFO GROUPS.
Entries acked by every group are retention's business (``ingestro.streams.retention``), not a backlog.

The bound (``INGESTRO_MAX_BACKLOG``, in entries) holds per row stream, and the parser pauses as a whole
while any row stream is over it: a file's batches go to every row stream (accepted and rejected rows,
and, partitioned, every partition), so the parser cannot go on for some of them only; and a bound per
stream is what bounds the memory of the node that holds it. It resumes once every stream is back at
the bound or under it.

While it waits, the parser's handler simply awaits: the stream runtime's heartbeat keeps refreshing the
idle time of its FileReceived (XCLAIM JUSTID, counting no delivery), so no one reclaims it and nothing
is dead-lettered, however long the projections take. Only reads are made, so a Redis that refuses
writes (full at ``maxmemory``) is still read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import attrs
import redis.asyncio as aioredis
import redis.exceptions

from ingestro.metrics import PARSER_PAUSED_SECONDS, ROW_BACKLOG
from ingestro.streams.connections import text

log = logging.getLogger(__name__)


def row_stream_readers(
    row_streams: tuple[str, ...], group_streams: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    """For each of ``row_streams``, the consumer groups (of ``group_streams``) that read it.

    Only these groups count: a group left over on a stream by something else (an old deployment) would
    otherwise hold the parser forever."""
    return {stream: tuple(group for group, read in group_streams.items() if stream in read) for stream in row_streams}


@attrs.define
class Backpressure:
    """Waits, before the parser publishes more, until every row stream's backlog is at most ``max_backlog``."""

    redis: aioredis.Redis
    #: Each row stream and the consumer groups that read it (``row_stream_readers``).
    readers: Mapping[str, tuple[str, ...]]
    #: Entries; 0: no bound.
    max_backlog: int
    poll_s: float = 0.2

    async def backlogs(self) -> dict[str, int]:
        """Each row stream's backlog: the most entries one of its groups has not acked (0 for a missing stream)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.readers:
                pipe.xinfo_groups(stream)
            replies = await pipe.execute(raise_on_error=False)
        backlogs: dict[str, int] = {}
        for (stream, groups), reply in zip(self.readers.items(), replies, strict=True):
            if isinstance(reply, redis.exceptions.ResponseError):  # no such key: nothing was published yet
                backlogs[stream] = 0
                continue
            if isinstance(reply, Exception):
                raise reply
            backlogs[stream] = max((_unacked(group) for group in reply if text(group["name"]) in groups), default=0)
        return backlogs

    async def wait_for_room(self) -> None:
        """Return once no row stream's backlog is over the bound; at once when there is no bound."""
        if self.max_backlog <= 0:
            return
        paused_at: float | None = None
        last = time.monotonic()
        while True:
            backlogs = await self.backlogs()
            for stream, backlog in backlogs.items():
                ROW_BACKLOG.labels(stream).set(backlog)
            now = time.monotonic()
            if paused_at is not None:
                PARSER_PAUSED_SECONDS.inc(now - last)
            last = now
            over = {stream: backlog for stream, backlog in backlogs.items() if backlog > self.max_backlog}
            if not over:
                break
            if paused_at is None:
                paused_at = now
                log.info("parsing paused: row stream backlog over the bound", extra={"backlogs": over})
            await asyncio.sleep(self.poll_s)
        if paused_at is not None:
            log.info("parsing resumed", extra={"paused_s": round(time.monotonic() - paused_at, 3)})


def _unacked(group: dict[str, Any]) -> int:
    # Redis 7 reports lag as nil when entries were deleted past the group's position (XDEL): then only its pending
    # entries are counted, rather than holding the parser on a number nobody can tell.
    return int(group.get("lag") or 0) + int(group["pending"])
