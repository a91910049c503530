"""Scaling a projection by processes: two `data` consumers share the batches, and one dying loses nothing.

The `data` consumers run as tasks of their own (the others through the stack),
so the test can kill one: its task is cancelled mid-handler, which, like
a SIGKILL, acks nothing. Which consumer applied what is recorded by wrapping
``DataProjection.handle_group``: each consumer process builds its own projection.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from ingestro.devtools.samples import Expected, write_sample
from ingestro.processes import consumer_settings
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.names import ACCEPTED_STREAM, DATA_GROUP, partition_keys
from ingestro.streams.runtime import Consumer, Entry
from projections.data import DataProjection
from tests.stack import REDIS_MODES, Stack, StackFactory

#: On a single redis-server and on a Redis Cluster: a dead consumer's partitions drain on either.
pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES)

#: A short visibility timeout, so a dead consumer's entries are reclaimed within the test.
VISIBILITY_S = 1.0


@attrs.define
class Applied:
    """Entries (stream/id: partitions share ids) each DataProjection (one per consumer) was given, in order."""

    by_projection: dict[int, list[str]] = attrs.field(factory=lambda: defaultdict(list))

    def wrap(self, handle_group: Callable[[DataProjection, list[Entry]], Awaitable[None]]) -> Any:
        async def recorded(projection: DataProjection, entries: list[Entry]) -> None:
            self.by_projection[id(projection)].extend(f"{entry.stream}/{entry.id}" for entry in entries)
            await asyncio.sleep(0.02)  # slow enough for both consumers to get work, and one to die holding some
            await handle_group(projection, entries)

        return recorded

    def shares(self) -> list[int]:
        return [len(set(ids)) for ids in self.by_projection.values()]


@attrs.define
class DataConsumers:
    """Two `data` consumers, each a task that can be killed alone."""

    stack: Stack
    stop: asyncio.Event = attrs.field(factory=asyncio.Event)
    tasks: dict[str, asyncio.Task[None]] = attrs.field(factory=dict)

    def start(self, *names: str) -> None:
        # Built as ingestro.processes.run_consumer does, but on the stack's clients: a killed task then
        # leaves no connection of its own unclosed.
        for name in names:
            projection = DataProjection(self.stack.pool, self.stack.redis)
            consumer = Consumer(
                self.stack.redis,
                group=DATA_GROUP,
                streams=group_stream_keys(self.stack.settings.partitions)[DATA_GROUP],
                name=name,
                handler=projection,
                settings=consumer_settings(self.stack.settings),
                group_handler=projection.handle_group,
            )
            self.tasks[name] = asyncio.create_task(consumer.run(self.stop))

    async def kill(self, name: str) -> None:
        task = self.tasks.pop(name)
        while not task.done():  # on Python 3.11, redis-py may swallow a cancellation: repeat it
            task.cancel()
            await asyncio.wait([task], timeout=0.1)

    async def stop_all(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks.values())


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> Applied:
    recorder = Applied()
    monkeypatch.setattr(DataProjection, "handle_group", recorder.wrap(DataProjection.handle_group))
    return recorder


def sample(rows: int) -> tuple[bytes, Expected]:
    out = io.BytesIO()
    expected = write_sample(out, "csv", rows, seed=11)
    return out.getvalue(), expected


async def assert_exact(stack: Stack, job: dict[str, Any], expected: Expected) -> None:
    assert job["status"] == "completed", job
    assert job["rows_accepted"] == expected.valid
    assert job["rows_inserted"] == expected.distinct
    assert job["rows_inserted"] + job["rows_duplicate"] == expected.valid
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
    for key in partition_keys(ACCEPTED_STREAM, stack.settings.partitions):  # every partition drained
        assert (await stack.redis.xpending(key, DATA_GROUP))["pending"] == 0, key


@pytest.mark.slow
async def test_two_data_consumers_each_apply_a_share_and_the_result_is_exact(
    stack_factory: StackFactory, applied: Applied
) -> None:
    content, expected = sample(4000)
    async for stack in stack_factory.open(visibility_timeout_s=VISIBILITY_S):
        stack.start_consumers(names=("parser", "errors", "jobs"))
        data = DataConsumers(stack)
        data.start("data-a", "data-b")
        try:
            job = await stack.ingest(content)
            await assert_exact(stack, job, expected)
        finally:
            await data.stop_all()

    shares = applied.shares()
    assert len(shares) == 2 and all(share > 0 for share in shares), shares
    batches = -(-expected.valid // 100)  # the stack's batch size
    assert sum(shares) == batches  # every batch given once: none was reclaimed from a live consumer


@pytest.mark.slow
async def test_when_one_data_consumer_dies_the_other_finishes_its_pending_work(
    stack_factory: StackFactory, applied: Applied
) -> None:
    content, expected = sample(6000)
    async for stack in stack_factory.open(visibility_timeout_s=VISIBILITY_S):
        stack.start_consumers(names=("parser", "errors", "jobs"))
        data = DataConsumers(stack)
        data.start("data-a", "data-b")
        try:
            accepted = await stack.upload(content)
            deadline = time.monotonic() + 30
            partitions = partition_keys(ACCEPTED_STREAM, stack.settings.partitions)
            while not [
                key for key in partitions if await stack.redis.xpending_range(key, DATA_GROUP, "-", "+", 1, "data-a")
            ]:
                assert time.monotonic() < deadline, "data-a never held an entry"
                await asyncio.sleep(0.005)
            await data.kill("data-a")
            given_before = {projection: len(ids) for projection, ids in applied.by_projection.items()}
            held = [
                f"{key}/{item['message_id'].decode()}"
                for key in partitions
                for item in await stack.redis.xpending_range(key, DATA_GROUP, "-", "+", 1000, "data-a")
            ]
            assert held, "data-a died holding nothing"

            job = await stack.wait_for_job(accepted["job_id"])
            await assert_exact(stack, job, expected)
        finally:
            await data.stop_all()

    # Only data-b is alive after the kill: what was given out since went to it.
    given_after = {
        id_ for projection, ids in applied.by_projection.items() for id_ in ids[given_before.get(projection, 0) :]
    }
    assert set(held) <= given_after, "the entries data-a held were not reclaimed and applied by data-b"
