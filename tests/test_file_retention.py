"""Uploaded-file retention on real Redis and PostgreSQL: what `ingestro files delete` refuses, and the periodic
policy INGESTRO_FILE_RETENTION_DAYS applied by the `jobs` consumer."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingestro.cli import files as files_command
from ingestro.config import Settings
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.storage import LocalStorage, storage_for
from ingestro.storage.retention import expire_files
from ingestro.streams.retention import trim_streams
from tests.stack import Stack, StackFactory
from tests.test_replay import distinct_rows


async def stored(stack: Stack, job_id: str) -> bool:
    return await storage_for(stack.settings).exists(job_id)


async def test_the_file_of_a_finished_job_whose_events_are_retained_can_be_deleted(stack: Stack) -> None:
    stack.start_consumers()
    job = await stack.ingest(distinct_rows(10, "a"))
    out = io.StringIO()

    assert await files_command.run(stack.settings, "delete", job["job_id"], force=False, out=out) == 0

    assert not await stored(stack, job["job_id"])
    assert (
        await stack.pool.fetchval("SELECT reason FROM deleted_files WHERE job_id = $1", job["job_id"])
        == "deleted by hand"
    )
    listing = io.StringIO()
    await files_command.run(stack.settings, "list", None, force=False, out=listing)
    assert f"{job['job_id']}  completed" in listing.getvalue() and "file=deleted" in listing.getvalue()


async def test_deleting_the_file_of_an_unfinished_job_is_refused(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    job = await stack.upload(distinct_rows(10, "b"))  # no consumer runs: the job stays pending

    assert await files_command.run(stack.settings, "delete", job["job_id"], force=True, out=io.StringIO()) == 1

    assert f"job {job['job_id']} is pending: its file is still needed" in capsys.readouterr().err
    assert await stored(stack, job["job_id"])


async def test_deleting_a_file_whose_events_were_trimmed_needs_force(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.start_consumers()
    job = await stack.ingest(distinct_rows(10, "c"))
    await stack.wait_idle()
    await trim_streams(stack.redis, group_stream_keys(stack.settings.partitions), retention_s=0)
    listing = io.StringIO()
    await files_command.run(stack.settings, "list", None, force=False, out=listing)
    assert "events=trimmed  file=stored" in listing.getvalue()

    assert await files_command.run(stack.settings, "delete", job["job_id"], force=False, out=io.StringIO()) == 1
    error = capsys.readouterr().err
    assert "only source left to reparse and replay it from" in error and "--force" in error
    assert await stored(stack, job["job_id"])

    assert await files_command.run(stack.settings, "delete", job["job_id"], force=True, out=io.StringIO()) == 0
    assert not await stored(stack, job["job_id"])


async def test_expiry_deletes_only_finished_jobs_files_older_than_the_window(stack: Stack) -> None:
    stack.start_consumers(names=("parser", "data", "errors", "jobs"))
    finished = await stack.ingest(distinct_rows(10, "d"))
    await stack.stop_consumers()
    pending = await stack.upload(distinct_rows(10, "e"))
    storage = storage_for(stack.settings)
    now = datetime.now(UTC)

    assert await expire_files(stack.pool, storage, days=1, now=now) == 0  # younger than a day
    assert await expire_files(stack.pool, storage, days=1, now=now + timedelta(days=2)) == 1

    assert not await stored(stack, finished["job_id"])
    assert await stored(stack, pending["job_id"])


async def test_the_jobs_consumer_applies_the_file_retention(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(file_retention_days=0, retention_interval_s=0.1):
        stack.start_consumers()
        job = await stack.ingest(distinct_rows(10, "f"))
        deadline = time.monotonic() + 10
        while await stored(stack, job["job_id"]):
            assert time.monotonic() < deadline, "the file was not deleted"
            await asyncio.sleep(0.05)
        assert isinstance(storage_for(stack.settings), LocalStorage)


def test_file_retention_is_kept_forever_unless_set_and_refuses_bad_values() -> None:
    assert Settings.from_env({}).file_retention_days is None
    assert Settings.from_env({"INGESTRO_FILE_RETENTION_DAYS": "30"}).file_retention_days == 30
    for bad in ("-1", "soon"):
        with pytest.raises(ValueError, match="INGESTRO_FILE_RETENTION_DAYS"):
            Settings.from_env({"INGESTRO_FILE_RETENTION_DAYS": bad})
