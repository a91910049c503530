"""A Redis Cluster master SIGKILLed mid-file loses nothing: every publish, dead letter and redrive waits for a replica
before its source entry is acked or deleted (``INGESTRO_REDIS_WAIT_REPLICAS``, ingestro/streams/replication.py).

Each test starts its own cluster with replicas and a short ``cluster-node-timeout``: 3 masters, 2 replicas each, so
that after a failover the promoted replica still has one replica and writes go on with no node restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from ingestro.devtools.samples import write_sample
from ingestro.devtools.servers import RedisClusterServers, RedisServer
from ingestro.domain.events import AcceptedRow, RowsAccepted
from ingestro.processes import run_consumer
from ingestro.streams import dlq, names
from ingestro.streams.names import DLQ_STREAM
from ingestro.streams.outages import is_outage
from ingestro.streams.publisher import publish_all, stream_for
from ingestro.streams.replication import NotReplicated, require_replicas
from ingestro.streams.runtime import Consumer, ConsumerSettings, Entry
from tests.stack import Stack, StackFactory

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    with RedisClusterServers(tmp_path / "cluster", masters=3, replicas=2, node_timeout_ms=1000) as cluster:
        yield cluster


@pytest.fixture
async def replicated_stack(
    replicated_cluster: RedisClusterServers, migrated: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    factory = StackFactory(replicated_cluster.url, migrated, tmp_path / "uploads", "cluster")
    async for stack in factory.open(redis_wait_replicas=1, visibility_timeout_s=2, batch_size=500):
        yield stack


def master_holding(cluster: RedisClusterServers, stack: Stack, key: str) -> RedisServer:
    node: Any = stack.redis.get_node_from_key(key)  # type: ignore[attr-defined]
    return next(server for server in cluster.nodes if server.port == node.port)


async def time_publish(stack: Stack, batches: int, *, wait: bool) -> float:
    """Seconds per batch to publish ``batches`` 500-row batches, 8 per round trip as the parser does."""
    redis = stack.redis
    require_replicas(redis, 1 if wait else 0)
    try:
        rows = [AcceptedRow(line, f"{line:064x}", {"email": f"n{line}@example.com", "age": 40}) for line in range(500)]
        events = [RowsAccepted(f"bench-{wait}", "contacts", seq, rows) for seq in range(batches)]
        started = time.perf_counter()
        for start in range(0, batches, 8):
            await publish_all(redis, events[start : start + 8], stack.settings.partitions)
        return (time.perf_counter() - started) / batches
    finally:
        require_replicas(redis, stack.settings.redis_wait_replicas)


@pytest.mark.timeout(180)
async def test_a_master_killed_mid_file_loses_nothing_and_the_job_completes_exactly(
    replicated_cluster: RedisClusterServers, replicated_stack: Stack
) -> None:
    stack = replicated_stack
    # The cost of the guarantee, measured on this cluster: the same batches with and without WAIT.
    without = await time_publish(stack, 160, wait=False)
    with_wait = await time_publish(stack, 160, wait=True)
    print(f"publish per 500-row batch: {without * 1e3:.2f} ms without WAIT, {with_wait * 1e3:.2f} ms with WAIT 1")
    for key in names.partition_keys(names.ACCEPTED_STREAM, stack.settings.partitions):
        await stack.redis.delete(key)

    out = io.BytesIO()
    expected = write_sample(out, "csv", 60_000, seed=17)
    stack.start_consumers()
    accepted = await stack.upload(out.getvalue())
    # The master of the job events (every batch's BatchApplied, the verdict) dies once rows are flowing.
    victim = master_holding(replicated_cluster, stack, names.JOB_EVENTS_STREAM)
    deadline = time.monotonic() + 60
    while await stack.pool.fetchval("SELECT count(*) FROM contacts") < expected.distinct // 10:
        assert time.monotonic() < deadline, "no rows were applied"
        await asyncio.sleep(0.05)
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    print(f"killed master {victim.port} at {await stack.pool.fetchval('SELECT count(*) FROM contacts')} rows")

    job = await stack.wait_for_job(accepted["job_id"], timeout=120)
    assert job["status"] == "completed", job
    assert job["rows_accepted"] == expected.valid
    assert job["rows_rejected"] == expected.invalid
    assert job["rows_inserted"] == expected.distinct
    assert job["rows_inserted"] + job["rows_duplicate"] == expected.valid
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
    assert await stack.pool.fetchval("SELECT count(*) FROM validation_errors") == expected.invalid
    assert victim.port not in {node.port for node in replicated_cluster.masters_now()}  # a replica took over
    assert stack.consumers_alive()
    victim.kill()  # forget the dead child


@pytest.mark.timeout(120)
async def test_a_publish_its_replicas_do_not_confirm_is_an_outage_and_succeeds_once_they_do(
    replicated_cluster: RedisClusterServers, replicated_stack: Stack
) -> None:
    stack = replicated_stack
    batch = RowsAccepted("job-1", "contacts", 0, [AcceptedRow(2, "a" * 64, {"email": "a@x.io", "age": 3})])
    master = master_holding(replicated_cluster, stack, stream_for(batch, stack.settings.partitions))
    with replicas_frozen(replicated_cluster, master):
        with pytest.raises(NotReplicated) as refused:
            await publish_all(stack.redis, [batch], stack.settings.partitions)
        assert is_outage(refused.value)  # retried in place, the source entry unacked, nothing counted
    await publish_all(stack.redis, [batch], stack.settings.partitions)


@pytest.mark.timeout(120)
async def test_an_entry_is_dead_lettered_and_a_dead_letter_redriven_only_once_replicas_hold_them(
    replicated_cluster: RedisClusterServers, replicated_stack: Stack
) -> None:
    redis = replicated_stack.redis
    stream, group = f"test:{names.CORE_TAG}:poison", "g"  # on the dead-letter stream's master
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    [source_id] = [(await redis.xadd(stream, {"n": "1"})).decode()]

    async def fail(entry: Entry) -> None:
        raise ValueError("poison")

    settings = ConsumerSettings(block_ms=50, max_deliveries=1, visibility_timeout_s=0.5, reclaim_interval_s=0.05)
    consumer = Consumer(redis, group, (stream,), "c1", fail, settings)
    stop = asyncio.Event()
    with replicas_frozen(replicated_cluster, master_holding(replicated_cluster, replicated_stack, DLQ_STREAM)):
        running = asyncio.create_task(consumer.run(stop))
        await asyncio.sleep(3)  # delivered, failed and dead-lettered, never confirmed (WAIT gives up after 2 s)
        pending = await redis.xpending(stream, group)
        assert pending["pending"] == 1, "the entry was acked before its dead letter reached a replica"
    deadline = time.monotonic() + 30
    while (await redis.xpending(stream, group))["pending"]:
        assert time.monotonic() < deadline, "the entry was never dead-lettered"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, 10)
    # Each unconfirmed attempt may have left a copy: duplicates, never a loss.
    letters = [entry for entry in await dlq.page(redis) if entry.letter.entry_id == source_id]
    assert letters

    with replicas_frozen(replicated_cluster, master_holding(replicated_cluster, replicated_stack, stream)):
        with pytest.raises(NotReplicated):
            await dlq.redrive(redis, letters[0].id)
        assert await dlq.get(redis, letters[0].id) is not None, "deleted before its entry reached a replica"
    assert await dlq.redrive(redis, letters[0].id) is not None
    assert await dlq.get(redis, letters[0].id) is None


@contextlib.contextmanager
def replicas_frozen(cluster: RedisClusterServers, master: RedisServer) -> Iterator[None]:
    """``master``'s replicas stopped (SIGSTOP): connected, but confirming nothing, until the block ends."""
    frozen = [
        node for node in cluster.nodes if node is not master and f"master_port:{master.port}" in _replication_info(node)
    ]
    assert len(frozen) == 2
    for node in frozen:
        assert node.pid is not None
        os.kill(node.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for node in frozen:
            assert node.pid is not None
            os.kill(node.pid, signal.SIGCONT)


def _replication_info(node: RedisServer) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(node.port), "INFO", "replication"], capture_output=True, text=True, check=False
    ).stdout


@pytest.mark.timeout(120)
async def test_a_consumer_started_while_a_master_is_down_waits_for_the_failover_instead_of_exiting(
    replicated_cluster: RedisClusterServers, replicated_stack: Stack
) -> None:
    victim = master_holding(replicated_cluster, replicated_stack, names.JOB_EVENTS_STREAM)
    live = next(node for node in replicated_cluster.nodes if node is not victim)
    victim.kill()
    settings = attrs.evolve(replicated_stack.settings, redis_url=live.url, consumer_name="late-parser")
    stop = asyncio.Event()
    consumer = asyncio.create_task(run_consumer("parser", settings, 0, stop))
    await asyncio.sleep(2)
    assert not consumer.done(), consumer.exception()  # still waiting out the outage (or already consuming)
    stop.set()
    await asyncio.wait_for(consumer, timeout=60)
