"""A full Redis is an outage: consumers wait on the same entry, the API answers 503, and every job completes.

On a private redis-server at ``maxmemory`` with ``maxmemory-policy noeviction`` (as compose runs
it), every write that would grow memory (XADD, HSET, SET, a script's ZADD) is refused with
``OOM command not allowed``. That passes by itself once memory frees (a trim, a bigger limit),
so it must count no delivery and dead-letter nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from ingestro.config import Settings
from ingestro.devtools.servers import RedisServer
from ingestro.streams.names import ACCEPTED_STREAM, DLQ_STREAM, FILES_STREAM, PARSER_GROUP
from ingestro.streams.outages import is_outage
from tests.stack import StackFactory, failure_records, row_stream_length
from tests.test_api import assert_problem
from tests.test_hostile_uploads import HEADER, assert_nothing_failed, post, rows

ROWS = 60_000
#: Room left above what Redis holds before the upload: its FileReceived fits (with what the consumers'
#: connections take meanwhile), its batches (about 58 bytes a row, compressed) do not.
ROOM = 1_000_000


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable"),
    ],
)
def test_redis_refusing_writes_is_an_outage(error: Exception) -> None:
    assert is_outage(error)


async def _no_failures(client: aioredis.Redis) -> None:
    assert await client.xlen(DLQ_STREAM) == 0
    assert not any((await failure_records(client, Settings.from_env({}).partitions)).values())


async def test_a_full_redis_is_waited_out_and_every_job_completes_exactly(tmp_path: Path, migrated: str) -> None:
    with RedisServer(tmp_path / "redis") as server:
        factory = StackFactory(server.url, migrated, tmp_path / "uploads")
        # Two deliveries would dead-letter within seconds if a refused write counted as a failure.
        async for stack in factory.open(max_deliveries=2):
            client = stack.redis
            # The data consumer is slow (not started), so the parser's batches pile up in Redis.
            stack.start_consumers(names=("parser", "errors", "jobs"))
            await client.config_set("maxmemory-policy", "noeviction")
            used = (await client.info("memory"))["used_memory"]
            await client.config_set("maxmemory", used + ROOM)

            first = await post(stack, HEADER + rows(ROWS))
            assert first.status_code == 202, first.text
            first_id = first.json()["job_id"]
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                for _ in range(200):  # until the parser has filled it
                    await client.set("probe", "x")
                    await client.delete("probe")
                    await asyncio.sleep(0.05)
            # Full it stays, whatever buffers Redis frees meanwhile.
            await client.config_set("maxmemory", (await client.info("memory"))["used_memory"] - 50_000)

            # The API refuses uploads while Redis refuses writes, and keeps no file of theirs.
            refused = await post(stack, HEADER + rows(10, ROWS))
            body = assert_problem(refused, 503)
            assert refused.headers["retry-after"] == "5"
            assert "Redis refuses writes" in str(body["detail"])
            assert [path.name for path in Path(stack.settings.upload_dir).glob("*")] == [first_id]

            # The consumers wait on their entries: nothing counted, nothing dead-lettered, the job not stalled.
            await asyncio.sleep(6)
            assert stack.consumers_alive()
            await _no_failures(client)
            pending = await client.xpending_range(FILES_STREAM, PARSER_GROUP, "-", "+", 10)
            assert [item["times_delivered"] for item in pending] == [1]
            assert (await stack.client.get(f"/jobs/{first_id}")).json()["status"] in ("pending", "processing")
            assert (
                await row_stream_length(client, ACCEPTED_STREAM, stack.settings.partitions)
                < ROWS // stack.settings.batch_size
            )

            # Memory frees: no manual step, every job completes exactly.
            await client.config_set("maxmemory", 0)
            stack.start_consumers(names=("data",))
            again = await post(stack, HEADER + rows(10, ROWS))
            assert again.status_code == 202, again.text
            for job_id, count in ((first_id, ROWS), (again.json()["job_id"], 10)):
                job = await stack.wait_for_job(job_id, timeout=90)
                assert job["status"] == "completed", job
                assert (job["rows_total"], job["rows_accepted"], job["rows_inserted"]) == (count, count, count), job
                assert job["error"] is None
            assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == ROWS + 10
            await assert_nothing_failed(stack)
