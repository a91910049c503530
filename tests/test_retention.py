"""Retention on a real Redis: only entries every group acked, and older than the window, are trimmed."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from ingestro.config import Settings
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.names import (
    ACCEPTED_STREAM,
    DATA_GROUP,
    DLQ_STREAM,
    FILES_STREAM,
    JOB_STATUS_STREAM,
    JOBS_GROUP,
    NOTIFICATIONS_GROUP,
    PARSER_GROUP,
    partition_key,
    partition_keys,
)
from ingestro.streams.retention import FOLLOWED_FLOOR_S, trim_by_age, trim_stream, trim_streams, trimmed_streams
from tests.stack import REDIS_MODES, StackFactory

#: The groups retention waits for on each stream.
GROUP_STREAM_KEYS = group_stream_keys(Settings.from_env({}).partitions)
GROUPS = trimmed_streams(GROUP_STREAM_KEYS)
#: One partition of the accepted rows.
ACCEPTED = partition_key(ACCEPTED_STREAM, 0, Settings.from_env({}).partitions)


async def ids(redis: aioredis.Redis, stream: str) -> list[str]:
    return [entry_id.decode() for entry_id, _ in await redis.xrange(stream)]


async def add(redis: aioredis.Redis, stream: str, *entry_ids: str) -> None:
    for entry_id in entry_ids:
        await redis.xadd(stream, {"n": entry_id}, id=entry_id)


async def deliver(redis: aioredis.Redis, stream: str, group: str, count: int) -> list[str]:
    reply = await redis.xreadgroup(group, "c", {stream: ">"}, count=count)
    return [entry_id.decode() for entry_id, _ in reply[0][1]]


async def test_pending_and_undelivered_entries_survive_and_acked_ones_go(redis: aioredis.Redis) -> None:
    await add(redis, ACCEPTED, "1-0", "2-0", "3-0", "4-0", "5-0")
    await redis.xgroup_create(ACCEPTED, DATA_GROUP, id="0")
    await deliver(redis, ACCEPTED, DATA_GROUP, 3)  # 4 and 5 not yet delivered
    await redis.xack(ACCEPTED, DATA_GROUP, "1-0", "2-0")  # 3 stays pending

    assert await trim_stream(redis, ACCEPTED, GROUPS[ACCEPTED], retention_s=0) == 2
    assert await ids(redis, ACCEPTED) == ["3-0", "4-0", "5-0"]


async def test_a_pending_entry_holds_back_the_acked_entries_after_it(redis: aioredis.Redis) -> None:
    await add(redis, ACCEPTED, "1-0", "2-0", "3-0")
    await redis.xgroup_create(ACCEPTED, DATA_GROUP, id="0")
    await deliver(redis, ACCEPTED, DATA_GROUP, 3)
    await redis.xack(ACCEPTED, DATA_GROUP, "1-0", "3-0")

    await trim_stream(redis, ACCEPTED, GROUPS[ACCEPTED], retention_s=0)

    assert await ids(redis, ACCEPTED) == ["2-0", "3-0"]


async def test_every_acked_entry_goes_once_the_group_read_them_all(redis: aioredis.Redis) -> None:
    await add(redis, ACCEPTED, "1-0", "2-0", "3-0")
    await redis.xgroup_create(ACCEPTED, DATA_GROUP, id="0")
    await deliver(redis, ACCEPTED, DATA_GROUP, 3)
    await redis.xack(ACCEPTED, DATA_GROUP, "1-0", "2-0", "3-0")

    await trim_stream(redis, ACCEPTED, GROUPS[ACCEPTED], retention_s=0)

    assert await ids(redis, ACCEPTED) == []


async def test_acked_entries_younger_than_the_window_are_kept(redis: aioredis.Redis) -> None:
    await add(redis, ACCEPTED, "1000-0", "2000-0", "3000-0")
    await redis.xgroup_create(ACCEPTED, DATA_GROUP, id="0")
    await deliver(redis, ACCEPTED, DATA_GROUP, 3)
    await redis.xack(ACCEPTED, DATA_GROUP, "1000-0", "2000-0", "3000-0")

    # At 3.5 s with a 1.5 s window, entries from before 2 s may go.
    await trim_stream(redis, ACCEPTED, GROUPS[ACCEPTED], retention_s=1.5, now_ms=3500)

    assert await ids(redis, ACCEPTED) == ["2000-0", "3000-0"]


async def test_the_slowest_group_of_a_stream_decides(redis: aioredis.Redis) -> None:
    await add(redis, FILES_STREAM, "1-0", "2-0", "3-0")
    for group in (PARSER_GROUP, JOBS_GROUP):
        await redis.xgroup_create(FILES_STREAM, group, id="0")
    await deliver(redis, FILES_STREAM, JOBS_GROUP, 3)
    await redis.xack(FILES_STREAM, JOBS_GROUP, "1-0", "2-0", "3-0")
    await deliver(redis, FILES_STREAM, PARSER_GROUP, 1)
    await redis.xack(FILES_STREAM, PARSER_GROUP, "1-0")

    await trim_stream(redis, FILES_STREAM, GROUPS[FILES_STREAM], retention_s=0)

    assert await ids(redis, FILES_STREAM) == ["2-0", "3-0"]


async def test_a_stream_missing_one_of_its_groups_is_not_trimmed(redis: aioredis.Redis) -> None:
    # The parser group is created when a parser first starts, reading from the start: it must find every entry.
    await add(redis, FILES_STREAM, "1-0", "2-0")
    await redis.xgroup_create(FILES_STREAM, JOBS_GROUP, id="0")
    await deliver(redis, FILES_STREAM, JOBS_GROUP, 2)
    await redis.xack(FILES_STREAM, JOBS_GROUP, "1-0", "2-0")

    assert await trim_stream(redis, FILES_STREAM, GROUPS[FILES_STREAM], retention_s=0) == 0
    assert await ids(redis, FILES_STREAM) == ["1-0", "2-0"]


async def test_the_dead_letter_stream_is_never_trimmed(redis: aioredis.Redis) -> None:
    await add(redis, DLQ_STREAM, "1-0")
    await redis.xgroup_create(DLQ_STREAM, JOBS_GROUP, id="0")
    await deliver(redis, DLQ_STREAM, JOBS_GROUP, 1)
    await redis.xack(DLQ_STREAM, JOBS_GROUP, "1-0")

    assert DLQ_STREAM not in await trim_streams(redis, GROUP_STREAM_KEYS, retention_s=0)
    assert await ids(redis, DLQ_STREAM) == ["1-0"]


@pytest.mark.parametrize("redis_mode", REDIS_MODES)
async def test_the_jobs_consumer_trims_what_every_group_is_done_with(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(stream_retention_s=0, retention_interval_s=0.1):
        stack.start_consumers()
        job = await stack.ingest(b"email,first_name,last_name,signup_date\na@x.io,A,B,2024-01-02\n")
        assert job["status"] == "completed"
        await stack.wait_idle()

        deadline = time.monotonic() + 10
        accepted = partition_keys(ACCEPTED_STREAM, stack.settings.partitions)
        while sum([await stack.redis.xlen(stream) for stream in (FILES_STREAM, *accepted)]) > 0:
            assert time.monotonic() < deadline, "the streams were not trimmed"
            await asyncio.sleep(0.05)
        assert (await stack.client.get(f"/jobs/{job['job_id']}")).json()["status"] == "completed"


async def test_the_job_status_stream_keeps_the_floor_for_followers_and_what_notifications_still_needs(
    redis: aioredis.Redis,
) -> None:
    now_ms = int(time.time() * 1000)
    older, old, recent = (
        now_ms - int(FOLLOWED_FLOOR_S * 1000) - ago for ago in (9000, 5000, -int(FOLLOWED_FLOOR_S * 1000) + 1000)
    )
    await add(redis, JOB_STATUS_STREAM, f"{older}-0", f"{old}-0", f"{recent}-0")
    # No notifications group yet: it will read from the start, so nothing goes.
    assert (await trim_streams(redis, GROUP_STREAM_KEYS, retention_s=0))[JOB_STATUS_STREAM] == 0
    # The group holds the second entry unacked: only the first goes; the recent one is the followers' (the floor).
    await redis.xgroup_create(JOB_STATUS_STREAM, NOTIFICATIONS_GROUP, id="0")
    await redis.xreadgroup(NOTIFICATIONS_GROUP, "c", {JOB_STATUS_STREAM: ">"}, count=2)
    await redis.xack(JOB_STATUS_STREAM, NOTIFICATIONS_GROUP, f"{older}-0")
    assert (await trim_streams(redis, GROUP_STREAM_KEYS, retention_s=0))[JOB_STATUS_STREAM] == 1
    await redis.xack(JOB_STATUS_STREAM, NOTIFICATIONS_GROUP, f"{old}-0")
    await redis.xreadgroup(NOTIFICATIONS_GROUP, "c", {JOB_STATUS_STREAM: ">"})
    await redis.xack(JOB_STATUS_STREAM, NOTIFICATIONS_GROUP, f"{recent}-0")
    assert (await trim_streams(redis, GROUP_STREAM_KEYS, retention_s=0))[JOB_STATUS_STREAM] == 1
    assert await ids(redis, JOB_STATUS_STREAM) == [f"{recent}-0"]
    # Read by no group (a deployment without webhooks' group in its table): by age alone, never under the floor.
    without = {group: streams for group, streams in GROUP_STREAM_KEYS.items() if group != NOTIFICATIONS_GROUP}
    assert (await trim_streams(redis, without, retention_s=0))[JOB_STATUS_STREAM] == 0
    assert await trim_by_age(redis, JOB_STATUS_STREAM, retention_s=0, now_ms=now_ms + int(FOLLOWED_FLOOR_S * 1000)) == 1
