"""Backpressure end to end: a frozen ``data`` consumer, a Redis at ``maxmemory 40mb`` with ``noeviction``.

The consumers run as separate processes (``python -m ingestro consume``) on a private redis-server.
The only ``data`` process is frozen (SIGSTOP) before the upload, so the accepted rows pile up: the
parser fills the row stream up to INGESTRO_MAX_BACKLOG and pauses there, for several visibility
timeouts, while a second parser process stands ready to reclaim a FileReceived left idle. Nothing is
reclaimed, redelivered or dead-lettered, Redis's memory stays far from the limit, and once the data
process is resumed (SIGCONT) the job completes with exact counts.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ingestro.config import Settings
from ingestro.devtools.samples import write_sample_file
from ingestro.devtools.servers import RedisServer
from ingestro.devtools.supervisor import Child, stop_all
from ingestro.streams.names import ACCEPTED_STREAM, DATA_GROUP, DLQ_STREAM, FILES_STREAM, PARSER_GROUP, partition_keys
from tests.stack import StackFactory, failure_records

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROWS = 100_000
BATCH_SIZE = 500
MAX_BACKLOG = 20
#: What the parser may publish past the bound: the chunk after its last check (8 batches), and its last
#: chunk, published without a check (at most 7).
OVERSHOOT = 16
VISIBILITY_TIMEOUT_S = 3
FROZEN_S = 4 * VISIBILITY_TIMEOUT_S
MAXMEMORY = 40 * 1024**2


#: The accepted rows' partitions (the processes run with the default INGESTRO_PARTITIONS).
ACCEPTED = partition_keys(ACCEPTED_STREAM, Settings.from_env({}).partitions)


async def _data_backlog(redis: aioredis.Redis) -> int:
    """The largest backlog of the data group on one partition (the bound holds per partition)."""
    backlog = 0
    for key in ACCEPTED:
        if await redis.exists(key):
            for group in await redis.xinfo_groups(key):
                if group["name"] == DATA_GROUP.encode():
                    backlog = max(backlog, int(group["lag"] or 0) + int(group["pending"]))
    return backlog


class Watch:
    """The peaks of Redis's memory and of the data group's backlog, sampled until stopped."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.memory = 0
        self.backlog = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.memory = max(self.memory, (await self.redis.info("memory"))["used_memory"])
            self.backlog = max(self.backlog, await _data_backlog(self.redis))
            await asyncio.sleep(0.05)


@pytest.mark.timeout(420)
async def test_a_frozen_data_consumer_pauses_the_parser_and_the_job_completes_once_it_resumes(
    tmp_path: Path, migrated: str
) -> None:
    with RedisServer(tmp_path / "redis", appendonly=False) as server:
        factory = StackFactory(server.url, migrated, tmp_path / "uploads")
        async for stack in factory.open():
            redis = stack.redis
            await redis.config_set("maxmemory-policy", "noeviction")
            await redis.config_set("maxmemory", MAXMEMORY)
            environment = {
                "INGESTRO_REDIS_URL": server.url,
                "INGESTRO_DATABASE_URL": migrated,
                "INGESTRO_UPLOAD_DIR": str(stack.settings.upload_dir),
                "INGESTRO_BATCH_SIZE": str(BATCH_SIZE),
                "INGESTRO_MAX_BACKLOG": str(MAX_BACKLOG),
                "INGESTRO_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
                "INGESTRO_BLOCK_MS": "200",
                "INGESTRO_STREAM_RETENTION_S": "0",
                "INGESTRO_RETENTION_INTERVAL_S": "1",
            }
            processes = {
                f"{group}-{slot}": Child(
                    f"{group}-{slot}",
                    [sys.executable, "-m", "ingestro", "consume", group, "--slot", str(slot)],
                    environment | {"INGESTRO_CONSUMER_NAME": f"{group}-{slot}"},
                    tmp_path / f"{group}-{slot}.log",
                )
                for group, slot in (("parser", 0), ("parser", 1), ("data", 0), ("errors", 0), ("jobs", 0))
            }
            stop_watching = asyncio.Event()
            watch = Watch(redis)
            watching = asyncio.create_task(watch.run(stop_watching))
            try:
                for process in processes.values():
                    process.start()
                deadline = time.monotonic() + 60
                while not await redis.exists(ACCEPTED[0]) or not await redis.xinfo_consumers(ACCEPTED[0], DATA_GROUP):
                    assert time.monotonic() < deadline, "the data consumer did not start"
                    await asyncio.sleep(0.1)
                processes["data-0"].send(signal.SIGSTOP)

                sample = tmp_path / "contacts.csv"
                expected = write_sample_file(sample, "csv", ROWS)
                response = await stack.client.post(
                    "/upload", content=sample.read_bytes(), headers={"content-type": "text/csv"}
                )
                assert response.status_code == 202, response.text
                job_id = response.json()["job_id"]

                deadline = time.monotonic() + 120
                while await _data_backlog(redis) < MAX_BACKLOG:
                    assert time.monotonic() < deadline, "the parser did not fill the row stream"
                    await asyncio.sleep(0.1)
                await asyncio.sleep(FROZEN_S)  # paused for several visibility timeouts

                assert watch.backlog <= MAX_BACKLOG + OVERSHOOT
                assert (await stack.client.get(f"/jobs/{job_id}")).json()["status"] == "processing"
                [held] = await redis.xpending_range(FILES_STREAM, PARSER_GROUP, "-", "+", 10)
                assert held["times_delivered"] == 1  # never reclaimed by the other parser
                assert await redis.xlen(DLQ_STREAM) == 0
                assert "parsing paused" in "".join((tmp_path / f"parser-{slot}.log").read_text() for slot in (0, 1))

                processes["data-0"].send(signal.SIGCONT)
                job = await stack.wait_for_job(job_id, timeout=300)
                assert job["status"] == "completed", job
                assert (
                    job["rows_total"],
                    job["rows_accepted"],
                    job["rows_rejected"],
                    job["rows_inserted"],
                    job["rows_duplicate"],
                ) == (expected.rows, expected.valid, expected.invalid, expected.distinct, expected.duplicates), job
                assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
                assert await redis.xlen(DLQ_STREAM) == 0
                assert not any((await failure_records(redis, Settings.from_env({}).partitions)).values())
                assert watch.backlog <= MAX_BACKLOG + OVERSHOOT
                assert watch.memory < MAXMEMORY
                assert all(process.alive() for process in processes.values())
            finally:
                stop_watching.set()
                await watching
                processes["data-0"].send(signal.SIGCONT)
                stop_all(processes.values(), signal.SIGTERM, grace_s=20)
