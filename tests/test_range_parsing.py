"""One file parsed in ranges by the whole parser group, on real Redis and PostgreSQL: the same tables,
errors and job as one parser gives; a range parser killed mid-way loses nothing; reparse agrees."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import consumers.parser
from consumers.parser import Parser
from consumers.reparse import Reparser
from ingestro.datasets.registry import DatasetRegistry
from ingestro.domain import codec
from ingestro.domain.events import FileReceived, ParseRange, ParseStarted
from ingestro.processes import consumer_settings
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.storage import storage_for
from ingestro.streams.dlq import DeadLetter
from ingestro.streams.names import ACCEPTED_STREAM, FILES_STREAM, PARSER_GROUP, partition_keys
from ingestro.streams.publisher import publish_all
from ingestro.streams.runtime import Consumer
from projections.jobs import JobsProjection
from tests.stack import REDIS_MODES, Stack, StackFactory
from tests.test_ranges import csv_text, ndjson_text

_ROWS = "SELECT email, first_name, last_name, age, signup_date, metadata, id, content_hash, first_line, last_line"
_ERRORS = "SELECT line, errors, raw FROM validation_errors ORDER BY line"
_COUNTS = ("status", "rows_total", "rows_accepted", "rows_rejected", "rows_inserted", "rows_duplicate", "error")


async def outcome(stack: Stack, job: dict[str, Any]) -> tuple[Any, ...]:
    rows = [tuple(row) for row in await stack.pool.fetch(f"{_ROWS} FROM contacts ORDER BY content_hash")]
    errors = [tuple(row) for row in await stack.pool.fetch(_ERRORS)]
    return tuple(job[key] for key in _COUNTS), job["unknown_columns"], rows, errors


async def ingest(stack: Stack, content: bytes, content_type: str) -> dict[str, Any]:
    job = await stack.ingest(content, content_type)
    await stack.wait_idle()
    return job


def csv_file() -> bytes:
    return b"\xef\xbb\xbf" + csv_text(3000).encode()


@pytest.mark.parametrize("redis_mode", REDIS_MODES)
@pytest.mark.parametrize(
    ("content", "content_type"),
    [(csv_file(), "text/csv"), (b"\xef\xbb\xbf" + ndjson_text(2000).encode(), "application/x-ndjson")],
)
async def test_a_file_parsed_in_ranges_gives_the_tables_errors_and_job_of_one_parser(
    stack_factory: StackFactory, content: bytes, content_type: str
) -> None:
    async for stack in stack_factory.open(parse_range_bytes=0):
        stack.start_consumers()
        one = await outcome(stack, await ingest(stack, content, content_type))
    async for stack in stack_factory.open(parse_range_bytes=len(content) // 9):
        stack.start_consumers(copies=2)
        job = await ingest(stack, content, content_type)
        ranged = await outcome(stack, job)
        tasks = await stack.redis.xrange(FILES_STREAM)
        assert sum(fields[b"type"] == b"ParseRange" for _, fields in tasks) >= 8
    assert one[0][0] == "completed" and one[2] and one[3]
    assert ranged == one


async def test_every_parser_of_the_group_takes_a_share_of_the_ranges(
    stack_factory: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = csv_file()
    parsed: list[int] = []
    parse_range = Parser.parse_range

    async def recorded(parser: Parser, task: Any) -> None:
        parsed.append(id(parser))
        await parse_range(parser, task)

    monkeypatch.setattr(Parser, "parse_range", recorded)
    async for stack in stack_factory.open(parse_range_bytes=len(content) // 12):
        stack.start_consumers(copies=2)
        job = await ingest(stack, content, "text/csv")
        assert job["status"] == "completed"
    shares = sorted(parsed.count(parser) for parser in set(parsed))
    # Each parser reads only as many entries as it handles at once: the other gets the rest.
    assert len(parsed) >= 12 and len(shares) == 2 and shares[0] >= 3, shares


async def accepted_entries(stack: Stack) -> int:
    """RowsAccepted entries in every partition of the stream."""
    return sum([await stack.redis.xlen(key) for key in partition_keys(ACCEPTED_STREAM, stack.settings.partitions)])


async def holds_a_range(stack: Stack, consumer: str) -> bool:
    pending = await stack.redis.xpending_range(FILES_STREAM, PARSER_GROUP, "-", "+", 10, consumer)
    for entry in pending:
        ((_, fields),) = await stack.redis.xrange(FILES_STREAM, entry["message_id"], entry["message_id"])
        if fields[b"type"] == b"ParseRange":
            return True
    return False


async def test_a_range_parser_killed_mid_way_still_completes_the_job_exactly(
    stack_factory: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = csv_file()

    async def slow_publish_all(redis: Any, events: Any, partitions: int | None = None) -> None:
        await publish_all(redis, events, partitions)
        await asyncio.sleep(0.02)  # slow enough to kill a parser between two chunks of its range

    async for stack in stack_factory.open(parse_range_bytes=0):
        stack.start_consumers()
        one = await outcome(stack, await ingest(stack, content, "text/csv"))
    monkeypatch.setattr(consumers.parser, "publish_all", slow_publish_all)
    async for stack in stack_factory.open(parse_range_bytes=len(content) // 4, visibility_timeout_s=1.0):
        stack.start_consumers(names=("data", "errors", "jobs"))
        stop = asyncio.Event()
        parsers: dict[str, asyncio.Task[None]] = {}
        for name in ("parser-a", "parser-b"):
            parser = Parser(
                stack.redis,
                storage_for(stack.settings),
                DatasetRegistry(stack.pool),
                stack.settings.batch_size,
                stack.settings.limits,
                partitions=stack.settings.partitions,
                range_bytes=stack.settings.parse_range_bytes,
            )
            consumer = Consumer(
                stack.redis,
                group=PARSER_GROUP,
                streams=group_stream_keys(stack.settings.partitions)[PARSER_GROUP],
                name=name,
                handler=parser,
                settings=consumer_settings(stack.settings, grouped=False),
            )
            parsers[name] = asyncio.create_task(consumer.run(stop))
        try:
            accepted = await stack.upload(content, "text/csv")
            deadline = time.monotonic() + 30
            while not await holds_a_range(stack, "parser-a") or await accepted_entries(stack) < 3:
                assert time.monotonic() < deadline, "parser-a never held a range under way"
                await asyncio.sleep(0.005)
            killed = parsers.pop("parser-a")
            while not killed.done():  # on Python 3.11, redis-py may swallow a cancellation: repeat it
                killed.cancel()
                await asyncio.wait([killed], timeout=0.1)
            job = await stack.wait_for_job(accepted["job_id"])
            await stack.wait_idle()
            assert await outcome(stack, job) == one
        finally:
            stop.set()
            await asyncio.gather(*parsers.values())


async def test_reparse_of_a_job_parsed_in_ranges_emits_the_same_batches(stack_factory: StackFactory) -> None:
    content = csv_file()
    async for stack in stack_factory.open(parse_range_bytes=len(content) // 5):
        stack.start_consumers(copies=2)
        job = await ingest(stack, content, "text/csv")
        before = await outcome(stack, job)
        batches = await stack.pool.fetch("SELECT projection, seq FROM job_batches ORDER BY 1, 2")
        assert max(row["seq"] for row in batches) >= 4 * 2**20
        settings = stack.settings
        reparser = Reparser(
            stack.pool,
            stack.redis,
            storage_for(settings),
            settings.batch_size,
            settings.limits,
            partitions=settings.partitions,
            range_bytes=settings.parse_range_bytes,
        )
        ready, problems = await reparser.plan([job["job_id"]])
        assert problems == {}
        accepted_before = await accepted_entries(stack)
        await reparser.reparse(ready[0])
        await stack.wait_idle()
        assert await accepted_entries(stack) == 2 * accepted_before
        assert await stack.pool.fetch("SELECT projection, seq FROM job_batches ORDER BY 1, 2") == batches
        again = await stack.client.get(f"/jobs/{job['job_id']}")
        assert await outcome(stack, again.json()) == before


async def test_the_jobs_projection_passes_over_a_range_and_a_dead_lettered_one_stalls_its_job(stack: Stack) -> None:
    job_id = "0b6f0c1e-6a4e-4d0c-9a59-3f1f2b7c9d10"
    received = FileReceived(job_id, "contacts", "big.csv", "key", "csv", 20, "ab" * 32, "2026-12-06T00:00:00+00:00")
    task = ParseRange(received, "1-0", 1, 2, 10, 20, 5, 1)
    jobs = JobsProjection(stack.pool)
    await jobs.apply(ParseStarted(job_id))
    await jobs.apply(task)
    assert await stack.pool.fetchval("SELECT status FROM jobs WHERE job_id = $1", job_id) == "processing"
    fields = {name.encode(): value for name, value in codec.encode(task).items()}
    letter = DeadLetter(FILES_STREAM, "2-0", PARSER_GROUP, "host-0", 5, "StorageFailed", "disk", "", "", fields)
    await jobs.stall("9-0", letter)
    row = await stack.pool.fetchrow("SELECT status, error FROM jobs WHERE job_id = $1", job_id)
    assert row["status"] == "stalled" and "ingestro dlq redrive 9-0" in row["error"], row
