"""An upgrade from the un-partitioned layout: consumers refuse to start while old streams hold entries."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from ingestro.streams.layout import LegacyStreams, refuse_legacy_streams


async def test_old_streams_with_entries_stop_a_consumer_with_what_to_do(redis: aioredis.Redis) -> None:
    await refuse_legacy_streams(redis)  # a fresh deployment starts
    await redis.xadd("ingestro:rows-accepted", {"n": "1"})
    with pytest.raises(LegacyStreams) as refused:
        await refuse_legacy_streams(redis)
    message = str(refused.value)
    assert "ingestro:rows-accepted" in message and "redis-cli DEL ingestro:rows-accepted" in message
    assert "\n" not in message

    await redis.delete("ingestro:rows-accepted")
    await refuse_legacy_streams(redis)  # once deleted, it starts
