"""PostgreSQL goes away mid-ingestion: consumers wait it out, count nothing as a failure, and finish exactly.

Uses the session's PostgreSQL, restarted on the same port and data, so the
tests after this one find it as it was.
"""

from __future__ import annotations

import asyncio
import io
import time

import pytest

from ingestro.devtools.samples import write_sample
from ingestro.devtools.servers import PostgresServer
from ingestro.streams.names import DLQ_STREAM
from tests.stack import StackFactory, failure_records

pytestmark = [pytest.mark.system, pytest.mark.slow]

OUTAGE_S = 10


async def test_postgres_down_for_ten_seconds_mid_ingestion_loses_nothing_and_dead_letters_nothing(
    stack_factory: StackFactory, postgres_server: PostgresServer
) -> None:
    out = io.BytesIO()
    expected = write_sample(out, "csv", rows=20_000, seed=3)
    async for stack in stack_factory.open(max_deliveries=2):  # the least tolerance: any counted failure shows
        stack.start_consumers(copies=2)
        job_id = (await stack.upload(out.getvalue()))["job_id"]
        deadline = time.monotonic() + 30
        while await stack.pool.fetchval("SELECT count(*) FROM applied_batches") < 10:
            assert time.monotonic() < deadline, "ingestion did not start"
            await asyncio.sleep(0.02)

        port = postgres_server.port
        postgres_server.stop()
        try:
            await asyncio.sleep(OUTAGE_S)
            dead_lettered_meanwhile = await stack.redis.xlen(DLQ_STREAM)
        finally:
            postgres_server.start()
        assert postgres_server.port == port

        job = await stack.wait_for_job(job_id, timeout=90)
        await stack.wait_idle()
        assert job["status"] == "completed", job
        assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (
            expected.rows,
            expected.valid,
            expected.invalid,
        )
        assert (job["rows_inserted"], job["rows_duplicate"]) == (expected.distinct, expected.duplicates)
        # The pools of the API, the consumers and the test all work again.
        assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
        assert await stack.pool.fetchval("SELECT count(*) FROM validation_errors") == expected.invalid
        # Nothing dead-lettered, during the outage or after; no delivery counted as a failure.
        assert dead_lettered_meanwhile == 0
        assert await stack.redis.xlen(DLQ_STREAM) == 0
        assert not any((await failure_records(stack.redis, stack.settings.partitions)).values())
