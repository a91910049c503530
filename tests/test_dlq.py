"""Dead letters: a poison batch stalls its job, the rest goes on, and redrive finishes it; the DLQ commands and API."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from ingestro.cli import dlq as dlq_command
from ingestro.devtools.samples import Expected, sample_rows, write_sample
from ingestro.domain import codec
from ingestro.domain.events import BatchApplied, ParseCompleted, ParseFailed, ParseStarted, RowsAccepted
from ingestro.streams import dlq
from ingestro.streams.dlq import DeadLetter
from ingestro.streams.names import ACCEPTED_STREAM, DLQ_STREAM, logical_stream, partition_key
from projections.jobs import JobsProjection
from tests.stack import Stack, StackFactory

JOB = "00000000-0000-4000-8000-00000000d1e0"


def sample(rows: int = 2000, seed: int = 7) -> tuple[bytes, Expected]:
    out = io.BytesIO()
    expected = write_sample(out, "csv", rows, seed)
    return out.getvalue(), expected


def line_of_a_distinct_valid_row(rows: int, seed: int, after_line: int) -> int:
    """A CSV line (the header is line 1) past ``after_line`` holding a valid row that repeats no earlier one."""
    for position, (_row, kind) in enumerate(sample_rows(rows, seed), start=2):
        if kind == "valid" and position > after_line:
            return position
    raise AssertionError("no such row")


async def ingestro_cli(redis_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ingestro",
        *args,
        env={**os.environ, "INGESTRO_REDIS_URL": redis_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


#: A partition of the accepted rows, where the dead letters below came from.
ACCEPTED = partition_key(ACCEPTED_STREAM, 0, 8)


def letter(seq: int = 0, job_id: str = JOB, group: str = "data") -> DeadLetter:
    event = RowsAccepted(job_id, "contacts", seq, [])
    return DeadLetter(
        stream=ACCEPTED,
        entry_id=f"1-{seq}",
        group=group,
        consumer="host-0",
        deliveries=5,
        error_type="CheckViolationError",
        error_message="new row violates check constraint",
        first_failure="2026-01-01T00:00:00Z",
        last_failure="2026-01-01T00:00:09Z",
        fields={name.encode(): value for name, value in codec.encode(event).items()},
    )


async def dead_letter(redis: aioredis.Redis, one: DeadLetter) -> str:
    return str((await redis.xadd(DLQ_STREAM, one.to_fields())).decode())  # type: ignore[arg-type]


# --------------------------------------------------------------------- end to end


@pytest.mark.slow
async def test_a_batch_the_database_refuses_is_dead_lettered_the_rest_completes_and_redrive_finishes_the_job(
    stack_factory: StackFactory,
) -> None:
    content, expected = sample()
    poison_line = line_of_a_distinct_valid_row(expected.rows, 7, after_line=500)
    async for stack in stack_factory.open(max_deliveries=3, visibility_timeout_s=2):
        # The fault: the database refuses one row of the file, on every delivery of its batch.
        await stack.pool.execute(f"ALTER TABLE contacts ADD CONSTRAINT poison CHECK (first_line <> {poison_line})")
        try:
            stack.start_consumers()
            job_id = (await stack.upload(content))["job_id"]
            stalled = await stack.wait_for_job(job_id, timeout=30, statuses=("stalled",))
            await stack.wait_idle()  # everything else was applied

            [summary] = (await stack.client.get("/dlq")).json()["items"]
            assert (summary["group"], logical_stream(summary["stream"]), summary["job_id"]) == (
                "data",
                ACCEPTED_STREAM,
                job_id,
            )
            assert (summary["event_type"], summary["error_type"], summary["deliveries"]) == (
                "RowsAccepted",
                "CheckViolationError",
                3,
            )
            entry = await dlq.get(stack.redis, summary["id"])
            assert entry is not None
            poisoned = entry.letter.event()
            assert isinstance(poisoned, RowsAccepted) and poison_line in {row.line for row in poisoned.rows}

            job = await stack.wait_for_job(job_id, statuses=("stalled",))
            assert job["error"] == stalled["error"]
            assert "CheckViolationError" in job["error"] and f"ingestro dlq redrive {summary['id']}" in job["error"]
            assert job["rows_rejected"] == expected.invalid  # the errors projection went on
            assert job["rows_accepted"] == expected.valid - len(poisoned.rows)  # so did data, but for the batch
        finally:
            await stack.pool.execute("ALTER TABLE contacts DROP CONSTRAINT IF EXISTS poison")

        code, out, err = await ingestro_cli(stack.settings.redis_url, "dlq", "redrive", summary["id"])
        assert code == 0, err
        assert out.startswith(f"redriven {summary['id']} -> ")

        job = await stack.wait_for_job(job_id, timeout=30)
        await stack.wait_idle()
        assert job["status"] == "completed", job
        assert job["error"] is None
        assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (
            expected.rows,
            expected.valid,
            expected.invalid,
        )
        assert (job["rows_inserted"], job["rows_duplicate"]) == (expected.distinct, expected.duplicates)
        assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
        lines = await stack.pool.fetch("SELECT line FROM validation_errors ORDER BY line")
        assert tuple(row["line"] for row in lines) == expected.invalid_lines
        assert await stack.redis.xlen(DLQ_STREAM) == 0


# ------------------------------------------------------------- jobs and dead letters


async def test_a_stalled_job_whose_parse_failed_ends_failed_with_the_parse_reason(stack: Stack) -> None:
    jobs = JobsProjection(stack.pool)
    await jobs.apply(ParseStarted(JOB))
    await jobs.stall("9-0", letter(seq=0))
    await jobs.apply(ParseFailed(JOB, "invalid JSON at line 9", 9, 8, 1, 0))
    stalled = await stack.pool.fetchrow("SELECT status, error FROM jobs WHERE job_id = $1", JOB)
    assert tuple(stalled) == ("stalled", "invalid JSON at line 9")

    await jobs.apply(BatchApplied(JOB, "data", 0, 8, 8, 0))  # the redriven batch

    finished = await stack.pool.fetchrow("SELECT status, error FROM jobs WHERE job_id = $1", JOB)
    assert tuple(finished) == ("failed", "invalid JSON at line 9")


async def test_a_dead_letter_leaves_a_finished_job_alone(stack: Stack) -> None:
    jobs = JobsProjection(stack.pool)
    await jobs.apply(ParseCompleted(JOB, 1, 1, 0, 1, 0, []))
    await jobs.apply(BatchApplied(JOB, "data", 0, 1, 1, 0))
    await jobs.stall("9-0", letter(seq=1))
    row = await stack.pool.fetchrow("SELECT status, error FROM jobs WHERE job_id = $1", JOB)
    assert tuple(row) == ("completed", None)


async def test_a_dead_letter_read_after_its_batch_was_redriven_and_counted_stalls_nothing(stack: Stack) -> None:
    jobs = JobsProjection(stack.pool)
    await jobs.apply(ParseCompleted(JOB, 2, 2, 0, 2, 0, []))
    await jobs.apply(BatchApplied(JOB, "data", 0, 1, 1, 0))
    await jobs.stall("9-0", letter(seq=0))
    assert await stack.pool.fetchval("SELECT status FROM jobs WHERE job_id = $1", JOB) == "processing"


async def test_a_dead_letter_of_a_dead_letter_is_ignored(stack: Stack) -> None:
    """What the jobs group failed on here was itself a dead letter: no job to stall, and no loop."""
    jobs = JobsProjection(stack.pool)
    twice = DeadLetter(DLQ_STREAM, "8-0", "jobs", "host-0", 5, "Boom", "boom", "", "", letter().to_fields())
    await jobs.stall("9-1", twice)
    assert await stack.pool.fetchval("SELECT count(*) FROM jobs") == 0


# --------------------------------------------------------------------- the commands


async def test_redrive_appends_the_entry_to_its_source_stream_then_deletes_the_dead_letter(stack: Stack) -> None:
    one = letter(seq=4)
    dlq_id = await dead_letter(stack.redis, one)

    new_id = await dlq.redrive(stack.redis, dlq_id)

    assert new_id is not None
    [(entry_id, fields)] = await stack.redis.xrange(ACCEPTED)
    assert (entry_id.decode(), fields) == (new_id, one.fields)
    assert await stack.redis.xlen(DLQ_STREAM) == 0
    assert await dlq.redrive(stack.redis, dlq_id) is None  # gone: a second redrive adds nothing
    assert await stack.redis.xlen(ACCEPTED) == 1


async def test_list_show_and_purge(stack: Stack) -> None:
    ids = [await dead_letter(stack.redis, letter(seq=seq)) for seq in range(3)]

    async def run(*args: str) -> tuple[int, str]:
        dlq_id = args[1] if len(args) > 1 and args[1] != "--all" else None
        out = io.StringIO()
        code = await dlq_command.run(stack.settings, args[0], dlq_id, "--all" in args, out)
        return code, out.getvalue()

    code, out = await run("list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[:-1]] == ids
    assert "group data gave up on RowsAccepted #1" in out.splitlines()[1] and f"[job {JOB}]" in out
    assert out.splitlines()[-1] == "3 dead letter(s)"

    code, out = await run("show", ids[1])
    shown: dict[str, Any] = orjson.loads(out)
    assert (code, shown["id"], shown["seq"], shown["job_id"]) == (0, ids[1], 1, JOB)
    assert orjson.loads(shown["fields"]["data"])["seq"] == 1

    assert (await run("purge", ids[0]))[0] == 0
    assert (await run("purge", ids[0]))[0] == 1  # no longer there
    assert (await run("show", "not-an-id"))[0] == 1
    code, out = await run("purge", "--all")
    assert (code, out.splitlines()[-1]) == (0, "2 dead letter(s) purged")
    assert await stack.redis.xlen(DLQ_STREAM) == 0


@pytest.mark.slow
async def test_redrive_all_redrives_every_dead_letter_however_many_pages(stack: Stack) -> None:
    for seq in range(250):
        await dead_letter(stack.redis, letter(seq=seq))
    out = io.StringIO()
    assert await dlq_command.run(stack.settings, "redrive", None, True, out) == 0
    assert out.getvalue().splitlines()[-1] == "250 dead letter(s) redriven"
    assert (await stack.redis.xlen(DLQ_STREAM), await stack.redis.xlen(ACCEPTED)) == (0, 250)


# ------------------------------------------------------------------------ the API


async def test_the_dlq_is_listed_page_by_page(stack: Stack) -> None:
    ids = [await dead_letter(stack.redis, letter(seq=seq)) for seq in range(5)]
    items = await stack.follow_pages("/dlq?limit=2")
    assert [item["id"] for item in items] == ids
    assert all(item["job_id"] == JOB and item["group"] == "data" for item in items)
    assert not any("fields" in item for item in items)  # payloads stay out of the list


async def test_a_bad_dlq_cursor_is_a_bad_request(stack: Stack) -> None:
    response = await stack.client.get("/dlq?cursor=WyJub3BlIl0")  # ["nope"]
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
