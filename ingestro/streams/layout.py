"""The un-partitioned key layout of earlier versions: found, it stops a consumer from starting, saying what to do.

Before partitioned row streams (``ingestro.streams.names``), every stream had an un-tagged name
(``ingestro:files``, ``ingestro:rows-accepted``, ...). Entries left there would never be read under
the new names, so a consumer refuses to start while any such stream still holds one: the operator
lets the previous version finish them, then deletes the old keys (``LegacyStreams`` says how). A
deployment on empty Redis, or one that did this, starts as usual. Job history lives in PostgreSQL,
so nothing is lost; only ``ingestro replay`` of jobs from before the upgrade then has no events (as
after stream retention: see ``ingestro replay --allow-loss``).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from ingestro.streams.names import LEGACY_STREAMS


class LegacyStreams(RuntimeError):
    """Redis still holds streams of the un-partitioned layout; the message says what to do, in one line."""


async def legacy_streams(redis: aioredis.Redis) -> list[str]:
    """The streams of the un-partitioned layout Redis still holds, with entries (one key per command)."""
    return [stream for stream in LEGACY_STREAMS if await redis.exists(stream) and await redis.xlen(stream)]


async def refuse_legacy_streams(redis: aioredis.Redis) -> None:
    """Raise ``LegacyStreams`` when an un-partitioned stream still holds entries."""
    found = await legacy_streams(redis)
    if found:
        raise LegacyStreams(
            f"Redis still holds streams of the un-partitioned layout ({', '.join(found)}): run the previous"
            " version until `ingestro streams` shows no lag and nothing pending (and `ingestro dlq list` is"
            f" empty), then delete them (redis-cli DEL {' '.join(found)}) and start this version again"
        )
