"""Reparse on real Redis and PostgreSQL: a job's trimmed events come back from its stored file, so a replay can
rebuild what retention had trimmed; a job whose file is gone, or parsed with another batch size, is refused."""

from __future__ import annotations

import io

import pytest

from consumers.reparse import Reparser
from ingestro.cli import reparse as reparse_command
from ingestro.domain import codec
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.storage import storage_for
from ingestro.storage.retention import delete_file, stored_files
from ingestro.streams.names import ACCEPTED_STREAM, FILES_STREAM, partition_keys
from ingestro.streams.retention import trim_streams
from projections.replay import ReplayRefused
from tests.stack import Stack, row_stream_length
from tests.test_replay import checksums, distinct_rows

BROKEN = b"email,first_name,last_name,signup_date\nz@x.io,Z,Y,2024-01-02\nbad,B,C,not a date\n"


def reparser(stack: Stack, batch_size: int | None = None) -> Reparser:
    return Reparser(
        stack.pool,
        stack.redis,
        storage_for(stack.settings),
        batch_size or stack.settings.batch_size,
        stack.settings.limits,
        partitions=stack.settings.partitions,
    )


@pytest.mark.slow
async def test_reparse_regenerates_trimmed_events_so_that_replay_rebuilds_everything(stack: Stack) -> None:
    stack.start_consumers()
    jobs = [await stack.ingest(distinct_rows(250, "a")), await stack.ingest(BROKEN)]
    await stack.wait_idle()
    before = await checksums(stack.pool)
    await trim_streams(stack.redis, group_stream_keys(stack.settings.partitions), retention_s=0)
    with pytest.raises(ReplayRefused):
        await stack.replay("data")

    ready, problems = await reparser(stack).plan([job["job_id"] for job in jobs])
    assert problems == {}
    for source in ready:
        await reparser(stack).reparse(source)
    await stack.wait_idle()

    assert await checksums(stack.pool) == before  # the live projections found every batch applied already
    for projection in ("data", "errors", "jobs"):
        outcome = await stack.replay(projection)
        assert outcome.lost == {}, projection
    assert await checksums(stack.pool) == before


async def test_a_job_whose_file_was_deleted_is_refused_and_nothing_is_reparsed(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.start_consumers()
    kept = await stack.ingest(distinct_rows(20, "kept"))
    gone = await stack.ingest(distinct_rows(20, "gone"))
    await stack.wait_idle()
    [file] = await stored_files(stack.pool, [gone["job_id"]])
    await delete_file(stack.pool, storage_for(stack.settings), file, "deleted by hand")
    events_before = await stack.redis.xlen("ingestro:job-events")

    status = await reparse_command.run(stack.settings, [kept["job_id"], gone["job_id"]], every=False, out=io.StringIO())

    assert status == 1
    error = capsys.readouterr().err
    assert f"job {gone['job_id']} cannot be reparsed: its file was deleted" in error and "deleted by hand" in error
    assert "nothing was reparsed" in error
    assert await stack.redis.xlen("ingestro:job-events") == events_before


async def test_a_job_parsed_with_another_batch_size_is_refused(stack: Stack) -> None:
    stack.start_consumers()
    job = await stack.ingest(distinct_rows(250, "b"))

    ready, problems = await reparser(stack, batch_size=50).plan([job["job_id"]])

    assert ready == []
    assert "INGESTRO_BATCH_SIZE" in problems[job["job_id"]] and "250 rows made 3 batches" in problems[job["job_id"]]


async def test_reparse_all_re_emits_every_job_with_its_original_position(stack: Stack) -> None:
    stack.start_consumers()
    job = await stack.ingest(distinct_rows(30, "c"))
    await stack.wait_idle()
    position = await stack.pool.fetchval("SELECT position FROM jobs WHERE job_id = $1", job["job_id"])
    [(entry_id, _)] = await stack.redis.xrange(FILES_STREAM)
    assert position == entry_id.decode()
    accepted = partition_keys(ACCEPTED_STREAM, stack.settings.partitions)
    before = await row_stream_length(stack.redis, ACCEPTED_STREAM, stack.settings.partitions)

    out = io.StringIO()
    assert await reparse_command.run(stack.settings, [], every=True, out=out) == 0

    assert f"reparsed job {job['job_id']}" in out.getvalue()
    [*_, (_, fields)] = [entry for key in accepted for entry in await stack.redis.xrange(key)]
    assert await row_stream_length(stack.redis, ACCEPTED_STREAM, stack.settings.partitions) == 2 * before
    assert f'"position":"{position}"'.encode() in codec.payload_json(fields)
    await stack.wait_idle()
    assert (await stack.client.get(f"/jobs/{job['job_id']}")).json()["rows_inserted"] == 30  # counted once
