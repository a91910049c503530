"""Backpressure (ingestro.streams.backpressure): the parser waits while a row stream's backlog is over
INGESTRO_MAX_BACKLOG, and goes on as it drains; nothing is redelivered or dead-lettered meanwhile."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ingestro.metrics import PARSER_PAUSED_SECONDS, ROW_BACKLOG
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.backpressure import Backpressure, row_stream_readers
from ingestro.streams.names import (
    ACCEPTED_STREAM,
    REJECTED_STREAM,
    ROW_STREAMS,
    partition_keys,
    stream_keys,
)

STREAM = "backpressure-test"


def test_each_row_stream_is_watched_for_the_groups_that_read_it() -> None:
    readers = row_stream_readers(stream_keys(ROW_STREAMS, 8), group_stream_keys(8))
    assert all(readers[key] == ("data",) for key in partition_keys(ACCEPTED_STREAM, 8))
    assert all(readers[key] == ("errors",) for key in partition_keys(REJECTED_STREAM, 8))
    assert len(readers) == 16  # the bound holds per partition


async def test_the_backlog_is_the_most_a_listed_group_has_not_acked(redis: aioredis.Redis) -> None:
    for index in range(10):
        await redis.xadd(STREAM, {"n": str(index)})
    await redis.xgroup_create(STREAM, "slow", id="0")
    await redis.xgroup_create(STREAM, "fast", id="$")
    await redis.xgroup_create(STREAM, "forgotten", id="0")  # not a reader: never counts
    await redis.xreadgroup("slow", "c", {STREAM: ">"}, count=4)  # 4 pending, 6 not yet delivered
    backpressure = Backpressure(redis, {STREAM: ("slow", "fast"), "missing-stream": ("slow",)}, 5)
    assert await backpressure.backlogs() == {STREAM: 10, "missing-stream": 0}
    entries = (await redis.xrange(STREAM, count=4))[:4]
    await redis.xack(STREAM, "slow", *(entry_id for entry_id, _ in entries))
    assert await backpressure.backlogs() == {STREAM: 6, "missing-stream": 0}


async def test_the_wait_lasts_while_the_backlog_is_over_the_bound_and_ends_as_it_drains(
    redis: aioredis.Redis,
) -> None:
    for index in range(8):
        await redis.xadd(STREAM, {"n": str(index)})
    await redis.xgroup_create(STREAM, "g", id="0")
    backpressure = Backpressure(redis, {STREAM: ("g",)}, max_backlog=5, poll_s=0.02)
    paused_before = PARSER_PAUSED_SECONDS._value.get()
    waiting = asyncio.create_task(backpressure.wait_for_room())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    assert ROW_BACKLOG.labels(STREAM)._value.get() == 8
    await redis.xreadgroup("g", "c", {STREAM: ">"}, count=3)
    entries = await redis.xrange(STREAM, count=3)
    await asyncio.sleep(0.1)
    assert not waiting.done()  # delivered is not acked: still 8 (5 not delivered, 3 pending)
    await redis.xack(STREAM, "g", *(entry_id for entry_id, _ in entries))
    await asyncio.wait_for(waiting, 2)
    assert ROW_BACKLOG.labels(STREAM)._value.get() == 5  # at the bound: room
    assert PARSER_PAUSED_SECONDS._value.get() - paused_before >= 0.3


async def test_no_bound_never_waits(redis: aioredis.Redis) -> None:
    for index in range(3):
        await redis.xadd(STREAM, {"n": str(index)})
    await redis.xgroup_create(STREAM, "g", id="0")
    await asyncio.wait_for(Backpressure(redis, {STREAM: ("g",)}, max_backlog=0).wait_for_room(), 1)
    await asyncio.wait_for(Backpressure(redis, {STREAM: ("g",)}, max_backlog=3).wait_for_room(), 1)
