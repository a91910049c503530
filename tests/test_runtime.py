"""The stream runtime on a real Redis: retry, dead-letter, outages, reclaim, heartbeat, leaving.

Consumers here run with timeouts in tenths of a second, so that what takes
minutes in production takes a moment; "dies" means the consumer's task is
cancelled mid-handler, which, like a SIGKILL, acks nothing and cleans nothing up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis.asyncio as aioredis

from ingestro.devtools.servers import RedisServer
from ingestro.streams.dlq import DeadLetter
from ingestro.streams.names import DLQ_STREAM, failures_key
from ingestro.streams.runtime import Consumer, ConsumerSettings, Entry, Handler

STREAM = "test:events"
GROUP = "g"
VISIBILITY_S = 0.5
SETTINGS = ConsumerSettings(
    block_ms=50,
    read_count=10,
    concurrency=1,
    visibility_timeout_s=VISIBILITY_S,
    max_deliveries=3,
    retry_base_s=0.1,
    reclaim_interval_s=0.05,
)


@pytest.fixture
async def redis(redis: aioredis.Redis) -> aioredis.Redis:
    """The session's Redis, emptied, with the test stream's group (conftest's ``redis``, plus the group)."""
    await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    return redis


@attrs.define
class Recorder:
    """A handler that records each call, then does what ``behaviour`` says (by default, nothing)."""

    behaviour: Callable[[Entry, int], Awaitable[None]] | None = None
    calls: list[tuple[float, Entry]] = attrs.field(factory=list)

    async def __call__(self, entry: Entry) -> None:
        self.calls.append((time.monotonic(), entry))
        if self.behaviour is not None:
            await self.behaviour(entry, len(self.calls))

    @property
    def ids(self) -> list[str]:
        return [entry.id for _, entry in self.calls]

    @property
    def deliveries(self) -> list[int]:
        return [entry.deliveries for _, entry in self.calls]


@attrs.define
class Running:
    consumer: Consumer
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def leave(self) -> None:
        """Stop cleanly: finish what is in hand, then leave the group if nothing is pending."""
        self.stop.set()
        await asyncio.wait_for(self.task, 10)

    async def die(self) -> None:
        """Vanish mid-work, acking nothing, like a SIGKILLed process."""
        while not self.task.done():  # on Python 3.11, redis-py may swallow a cancellation: repeat it
            self.task.cancel()
            await asyncio.wait([self.task], timeout=0.1)


@contextlib.asynccontextmanager
async def running(
    redis: aioredis.Redis, name: str, handler: Handler, settings: ConsumerSettings = SETTINGS
) -> AsyncIterator[Running]:
    stop = asyncio.Event()
    consumer = Consumer(redis, group=GROUP, streams=(STREAM,), name=name, handler=handler, settings=settings)
    handle = Running(consumer, asyncio.create_task(consumer.run(stop)), stop)
    try:
        yield handle
    finally:
        if not handle.task.done():
            await handle.die()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def add(redis: aioredis.Redis, *values: str) -> list[str]:
    return [(await redis.xadd(STREAM, {"n": value})).decode() for value in values]


async def pending(redis: aioredis.Redis) -> list[dict[str, Any]]:
    return list(await redis.xpending_range(STREAM, GROUP, "-", "+", 1000))


async def block_forever(_entry: Entry, _call: int) -> None:
    await asyncio.Event().wait()


# ------------------------------------------------------------ failures and the DLQ


async def test_a_failing_entry_is_retried_with_backoff_then_dead_lettered_with_its_failure(
    redis: aioredis.Redis,
) -> None:
    async def refuse(_entry: Entry, _call: int) -> None:
        raise ValueError("age 999999999999999999999 is out of range")

    handler = Recorder(refuse)
    [entry_id] = await add(redis, "1")
    async with running(redis, "c1", handler):
        await eventually(lambda: redis.xlen(DLQ_STREAM))
        await asyncio.sleep(0.3)  # nothing more happens to it

    assert handler.deliveries == [1, 2, 3]  # max_deliveries attempts, no more
    times = [at for at, _ in handler.calls]
    assert times[1] - times[0] >= SETTINGS.retry_delay_s(1)
    assert times[2] - times[1] >= SETTINGS.retry_delay_s(2) > SETTINGS.retry_delay_s(1)

    [(_, fields)] = await redis.xrange(DLQ_STREAM)
    letter = DeadLetter.from_fields(fields)
    assert (letter.stream, letter.entry_id, letter.group, letter.consumer) == (STREAM, entry_id, GROUP, "c1")
    assert letter.deliveries == 3
    assert (letter.error_type, letter.error_message) == ("ValueError", "age 999999999999999999999 is out of range")
    assert "" < letter.first_failure <= letter.last_failure
    assert letter.fields == {b"n": b"1"}
    assert fields[b"entry.n"] == b"1"  # the original fields ride along, prefixed
    assert await pending(redis) == []  # acked once dead-lettered
    assert await redis.hlen(failures_key(GROUP, STREAM)) == 0


async def test_the_dead_letter_is_written_before_the_entry_is_acked(redis: aioredis.Redis) -> None:
    async def refuse(_entry: Entry, _call: int) -> None:
        raise ValueError("never")

    commands: list[str] = []

    async def watch() -> None:
        async with aioredis.Redis(connection_pool=redis.connection_pool).monitor() as monitor:
            while True:
                commands.append((await monitor.next_command())["command"])

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.1)
    [entry_id] = await add(redis, "1")
    async with running(redis, "c1", Recorder(refuse)):
        await eventually(lambda: redis.xlen(DLQ_STREAM))
        await eventually(lambda: _no_pending(redis))
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher

    dead_letter = next(i for i, c in enumerate(commands) if c.startswith(f"XADD {DLQ_STREAM}"))
    ack = next(i for i, c in enumerate(commands) if c.startswith(f"XACK {STREAM} {GROUP} {entry_id}"))
    assert dead_letter < ack


async def _no_pending(redis: aioredis.Redis) -> bool:
    return not await pending(redis)


async def test_an_outage_is_retried_in_place_without_counting_deliveries(redis: aioredis.Redis) -> None:
    counted: list[int] = []

    async def unreachable_then_fine(_entry: Entry, call: int) -> None:
        counted.extend(int(item["times_delivered"]) for item in await pending(redis))
        if call <= SETTINGS.max_deliveries + 2:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    handler = Recorder(unreachable_then_fine)
    await add(redis, "1")
    async with running(redis, "c1", handler, attrs.evolve(SETTINGS, retry_base_s=0.02)):
        await eventually(lambda: _handled(handler, SETTINGS.max_deliveries + 3))
        await eventually(lambda: _no_pending(redis))

    assert len(handler.calls) == SETTINGS.max_deliveries + 3  # every outage retried, then handled
    assert set(handler.deliveries) == set(counted) == {1}  # one delivery throughout
    assert await redis.xlen(DLQ_STREAM) == 0
    assert await redis.hlen(failures_key(GROUP, STREAM)) == 0


@pytest.mark.server  # starts a redis-server of its own
async def test_a_consumer_rides_out_a_redis_restart(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as server:
        client = aioredis.Redis.from_url(server.url, socket_timeout=5)
        handler = Recorder()
        await client.xadd(STREAM, {"n": "before"})
        async with running(client, "c1", handler) as consumer:
            await eventually(lambda: _handled(handler, 1))
            server.stop()
            await asyncio.sleep(1.5)
            assert not consumer.task.done()
            server.start()
            await client.xadd(STREAM, {"n": "after"})
            await eventually(lambda: _handled(handler, 2))
        await client.aclose()
    assert [entry.fields[b"n"] for _, entry in handler.calls] == [b"before", b"after"]


async def _handled(handler: Recorder, count: int) -> bool:
    return len(handler.calls) >= count


# ------------------------------------------------------------------- reclaiming


async def test_entries_of_a_consumer_that_died_are_reclaimed_by_another_after_the_visibility_timeout(
    redis: aioredis.Redis,
) -> None:
    ids = await add(redis, "1", "2", "3")
    async with running(redis, "dies", Recorder(block_forever)) as dying:
        await eventually(lambda: _pending_count(redis, 3))
        await dying.die()
    died_at = time.monotonic()

    survivor = Recorder()
    async with running(redis, "survivor", survivor):
        await eventually(lambda: _handled(survivor, 3))
        await eventually(lambda: _no_pending(redis))

    assert sorted(survivor.ids) == ids
    assert survivor.deliveries == [2, 2, 2]
    # Idle time counts from the dead consumer's last heartbeat, at most a third of the timeout before it died.
    assert survivor.calls[0][0] - died_at >= VISIBILITY_S * 2 / 3 - 0.05


async def _pending_count(redis: aioredis.Redis, count: int) -> bool:
    return len(await pending(redis)) == count


async def test_a_restarted_consumer_handles_its_own_pending_entries_first(redis: aioredis.Redis) -> None:
    held = await add(redis, "1", "2")
    async with running(redis, "a", Recorder(block_forever)) as first_life:
        await eventually(lambda: _pending_count(redis, 2))
        await first_life.die()
    fresh = await add(redis, "3", "4")

    second_life = Recorder()
    patient = attrs.evolve(SETTINGS, visibility_timeout_s=60)  # no reclaiming: only its own list
    async with running(redis, "a", second_life, patient):
        await eventually(lambda: _handled(second_life, 4))

    assert second_life.ids == held + fresh
    assert second_life.deliveries == [2, 2, 1, 1]


async def test_a_handler_running_longer_than_the_visibility_timeout_is_not_reclaimed(redis: aioredis.Redis) -> None:
    async def slow(_entry: Entry, _call: int) -> None:
        await asyncio.sleep(4 * VISIBILITY_S)

    worker, bystander = Recorder(slow), Recorder()
    await add(redis, "1")
    async with running(redis, "worker", worker), running(redis, "bystander", bystander):
        await eventually(lambda: _handled(worker, 1))
        await eventually(lambda: _no_pending(redis))

    assert worker.deliveries == [1]
    assert bystander.calls == []


@pytest.mark.slow
async def test_entries_waiting_for_a_free_handler_are_not_reclaimed(redis: aioredis.Redis) -> None:
    async def slow(_entry: Entry, _call: int) -> None:
        await asyncio.sleep(3 * VISIBILITY_S)

    worker, bystander = Recorder(slow), Recorder()
    await add(redis, "1", "2")  # read together; the second waits for the first (concurrency 1)
    async with running(redis, "worker", worker), running(redis, "bystander", bystander):
        await eventually(lambda: _handled(worker, 2))
        await eventually(lambda: _no_pending(redis))

    assert worker.deliveries == [1, 1]
    assert bystander.calls == []


async def test_delivery_counts_are_exact_however_many_entries_other_consumers_hold(redis: aioredis.Redis) -> None:
    """A poison entry is dead-lettered on time even when the pending list around it is long."""
    [first] = await add(redis, "mine")
    await redis.xreadgroup(GROUP, "a", {STREAM: ">"})
    await add(redis, *(f"theirs-{i}" for i in range(150)))
    await redis.xreadgroup(GROUP, "other", {STREAM: ">"}, count=150)
    [last] = await add(redis, "mine too, and exhausted")
    await redis.xreadgroup(GROUP, "a", {STREAM: ">"})
    for _ in range(SETTINGS.max_deliveries - 1):
        await redis.xclaim(STREAM, GROUP, "a", 0, [last])  # delivered max_deliveries times by now

    handler = Recorder()
    async with running(redis, "a", handler, attrs.evolve(SETTINGS, visibility_timeout_s=60)):
        await eventually(lambda: redis.xlen(DLQ_STREAM))
        await eventually(lambda: _handled(handler, 1))

    assert handler.ids == [first]
    [(_, fields)] = await redis.xrange(DLQ_STREAM)
    assert DeadLetter.from_fields(fields).entry_id == last


# ---------------------------------------------------------- entries deleted while pending


async def test_pending_entries_deleted_from_the_stream_are_dropped_when_reclaimed(redis: aioredis.Redis) -> None:
    kept_1, deleted, kept_2 = await add(redis, "1", "2", "3")
    async with running(redis, "dies", Recorder(block_forever)) as dying:
        await eventually(lambda: _pending_count(redis, 3))
        await dying.die()
    await redis.xdel(STREAM, deleted)

    survivor = Recorder()
    async with running(redis, "survivor", survivor):
        await eventually(lambda: _no_pending(redis))
        await eventually(lambda: _handled(survivor, 2))

    assert sorted(survivor.ids) == [kept_1, kept_2]
    assert await redis.xlen(DLQ_STREAM) == 0


async def test_pending_entries_deleted_from_the_stream_are_dropped_on_restart(redis: aioredis.Redis) -> None:
    kept_1, deleted, kept_2 = await add(redis, "1", "2", "3")
    async with running(redis, "a", Recorder(block_forever)) as first_life:
        await eventually(lambda: _pending_count(redis, 3))
        await first_life.die()
    await redis.xdel(STREAM, deleted)

    second_life = Recorder()
    async with running(redis, "a", second_life, attrs.evolve(SETTINGS, visibility_timeout_s=60)):
        await eventually(lambda: _no_pending(redis))

    assert second_life.ids == [kept_1, kept_2]


async def test_a_failed_entry_deleted_before_its_retry_is_dropped(redis: aioredis.Redis) -> None:
    async def refuse(_entry: Entry, _call: int) -> None:
        raise ValueError("bad")

    handler = Recorder(refuse)
    [entry_id] = await add(redis, "1")
    async with running(redis, "c1", handler, attrs.evolve(SETTINGS, retry_base_s=0.3)):
        await eventually(lambda: _handled(handler, 1))
        await redis.xdel(STREAM, entry_id)
        await eventually(lambda: _no_pending(redis))

    assert handler.deliveries == [1]
    assert await redis.xlen(DLQ_STREAM) == 0


# --------------------------------------------------------------------- leaving


async def consumers(redis: aioredis.Redis) -> dict[str, int]:
    return {info["name"].decode(): info["pending"] for info in await redis.xinfo_consumers(STREAM, GROUP)}


async def test_a_consumer_leaving_with_no_pending_entry_is_removed_from_the_group(redis: aioredis.Redis) -> None:
    handler = Recorder()
    await add(redis, "1")
    async with running(redis, "c1", handler) as consumer:
        await eventually(lambda: _handled(handler, 1))
        await eventually(lambda: _no_pending(redis))
        assert await consumers(redis) == {"c1": 0}
        await consumer.leave()
    assert await consumers(redis) == {}


async def test_a_consumer_leaving_with_pending_entries_stays_in_the_group(redis: aioredis.Redis) -> None:
    async def refuse(_entry: Entry, _call: int) -> None:
        raise ValueError("bad")

    handler = Recorder(refuse)
    await add(redis, "1")
    async with running(redis, "c1", handler, attrs.evolve(SETTINGS, retry_base_s=5)) as consumer:
        await eventually(lambda: _handled(handler, 1))
        await consumer.leave()
    # Deleting it would drop the entry from the pending list: it stays for someone to reclaim.
    assert await consumers(redis) == {"c1": 1}


# ------------------------------------------------------------------- group handlers


@attrs.define
class GroupRecorder:
    """A group handler that records each group, refusing any group holding ``poison``."""

    poison: str | None = None
    groups: list[list[str]] = attrs.field(factory=list)

    async def __call__(self, entries: list[Entry]) -> None:
        self.groups.append([entry.fields[b"n"].decode() for entry in entries])
        if any(entry.fields[b"n"].decode() == self.poison for entry in entries):
            raise ValueError("one poison entry")


async def test_fresh_entries_are_handled_in_groups_and_acked_together(redis: aioredis.Redis) -> None:
    await add(redis, *(str(n) for n in range(6)))
    groups, single = GroupRecorder(), Recorder()
    settings = attrs.evolve(SETTINGS, read_count=6, group_size=3)
    stop = asyncio.Event()
    consumer = Consumer(redis, GROUP, (STREAM,), "c1", single, settings, group_handler=groups)
    task = asyncio.create_task(consumer.run(stop))
    await eventually(lambda: _no_pending(redis))
    stop.set()
    await task
    assert groups.groups == [["0", "1", "2"], ["3", "4", "5"]]
    assert single.calls == []


@pytest.mark.parametrize("linger_ms", [0, 300])
async def test_a_read_short_of_a_group_lingers_for_the_rest_of_a_burst(redis: aioredis.Redis, linger_ms: int) -> None:
    groups, single = GroupRecorder(), Recorder()
    settings = attrs.evolve(SETTINGS, read_count=3, group_size=3, group_linger_ms=linger_ms)
    stop = asyncio.Event()
    consumer = Consumer(redis, GROUP, (STREAM,), "c1", single, settings, group_handler=groups)
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.sleep(0.2)  # the consumer blocks in its read
    await add(redis, "0")
    await asyncio.sleep(0.1)  # the read has returned "0"; the rest of the burst comes a moment later
    await add(redis, "1", "2")
    await eventually(lambda: _no_pending(redis))
    stop.set()
    await task
    alone = [entry.fields[b"n"].decode() for _, entry in single.calls]
    if linger_ms:
        assert (alone, groups.groups) == ([], [["0", "1", "2"]])
    else:  # the first entry is handled as soon as it is read
        assert alone[0] == "0" and sorted(alone + [entry for group in groups.groups for entry in group]) == [
            "0",
            "1",
            "2",
        ]


async def test_a_group_that_fails_is_handled_entry_by_entry_so_only_the_poison_fails(redis: aioredis.Redis) -> None:
    async def refuse_poison(entry: Entry, _call: int) -> None:
        if entry.fields[b"n"] == b"1":
            raise ValueError("poison")

    await add(redis, "0", "1", "2")
    groups, single = GroupRecorder(poison="1"), Recorder(refuse_poison)
    settings = attrs.evolve(SETTINGS, read_count=3, group_size=3)
    stop = asyncio.Event()
    consumer = Consumer(redis, GROUP, (STREAM,), "c1", single, settings, group_handler=groups)
    task = asyncio.create_task(consumer.run(stop))
    await eventually(lambda: redis.xlen(DLQ_STREAM))
    stop.set()
    await task
    assert groups.groups == [["0", "1", "2"]]  # retries never go through the group handler
    assert [entry.fields[b"n"] for _, entry in single.calls].count(b"1") == SETTINGS.max_deliveries
    assert sorted({entry.fields[b"n"] for _, entry in single.calls}) == [b"0", b"1", b"2"]
    assert await pending(redis) == []


async def _no_pending(redis: aioredis.Redis) -> bool:
    info = await redis.xinfo_groups(STREAM)
    return (
        bool(info)
        and info[0]["pending"] == 0
        and info[0]["last-delivered-id"] == (await redis.xinfo_stream(STREAM))["last-generated-id"]
    )
