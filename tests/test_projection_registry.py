"""The projection registry and the consumer-group table as a specification: each projection's streams, tables and
announcements, and every place that needs the projections or the group -> streams map takes them from there."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from consumers.fetcher import Fetcher
from consumers.parser import Parser
from ingestro.cli.main import build_parser
from ingestro.domain.events import BatchApplied, JobStatusChanged
from ingestro.services.consumer_groups import (
    CONSUMER_GROUPS,
    CONSUMER_NAMES,
    GROUP_STREAMS,
    UnknownConsumer,
    consumer_group,
    group_stream_keys,
)
from ingestro.streams.collector import streams_read
from ingestro.streams.names import (
    ACCEPTED_STREAM,
    DLQ_STREAM,
    FILES_STREAM,
    FOLLOWED_STREAMS,
    IMPORTS_STREAM,
    JOB_EVENTS_STREAM,
    JOB_STATUS_STREAM,
    REJECTED_STREAM,
    partition_keys,
)
from ingestro.streams.publisher import stream_for
from ingestro.streams.retention import trimmed_streams
from projections.data import DataProjection
from projections.errors import ErrorsProjection
from projections.jobs import JobsProjection
from projections.registry import PROJECTIONS, UnknownProjection, projection_named, projection_streams
from tests.stack import Stack


def test_the_registry_holds_every_projection_by_its_group_name() -> None:
    assert dict(PROJECTIONS) == {"data": DataProjection, "errors": ErrorsProjection, "jobs": JobsProjection}
    assert projection_named("jobs") is JobsProjection
    with pytest.raises(UnknownProjection, match="unknown projection 'parser'; choose from data, errors, jobs"):
        projection_named("parser")


def test_each_projection_says_the_streams_it_reads_in_replay_order() -> None:
    assert projection_streams() == {
        "data": (ACCEPTED_STREAM,),
        "errors": (REJECTED_STREAM,),
        # files first and dead letters last: a job finished since its entry was dead-lettered stays finished
        "jobs": (FILES_STREAM, JOB_EVENTS_STREAM, DLQ_STREAM),
    }


def test_every_consumer_group_comes_from_one_table_the_parser_first() -> None:
    assert CONSUMER_NAMES == ("parser", "fetcher", "data", "errors", "jobs", "notifications")
    assert dict(GROUP_STREAMS) == {
        "parser": Parser.streams,
        "fetcher": Fetcher.streams,
        **projection_streams(),
        "notifications": (JOB_STATUS_STREAM,),
    }
    assert all(CONSUMER_GROUPS[name].streams == GROUP_STREAMS[name] for name in CONSUMER_NAMES)
    # Followed by XREAD too: retention keeps its floor (tests/test_retention.py).
    assert [group for group, streams in GROUP_STREAMS.items() if JOB_STATUS_STREAM in streams] == ["notifications"]


def test_what_projections_announce_lands_where_a_group_or_a_follower_reads_it() -> None:
    read = {stream for streams in GROUP_STREAMS.values() for stream in streams}
    samples = {
        BatchApplied: BatchApplied("j", "data", 0, 1, 1, 0),
        JobStatusChanged: JobStatusChanged("j", "completed", "processing", 1, 1, 0, 1, 0, None),
    }
    for projection in PROJECTIONS.values():
        assert projection.announces, projection.name
        for announced in projection.announces:
            stream = stream_for(samples[announced])
            assert stream in read or stream in FOLLOWED_STREAMS, (projection.name, announced)
    # BatchApplied of data and errors is what the jobs projection counts.
    assert stream_for(samples[BatchApplied]) in JobsProjection.streams


def test_retention_and_the_metrics_cover_exactly_the_streams_the_groups_read() -> None:
    keys = group_stream_keys(3)
    accepted, rejected = partition_keys(ACCEPTED_STREAM, 3), partition_keys(REJECTED_STREAM, 3)
    assert trimmed_streams(keys) == {
        **{key: {"data"} for key in accepted},
        FILES_STREAM: {"parser", "jobs"},
        IMPORTS_STREAM: {"fetcher"},
        JOB_EVENTS_STREAM: {"jobs"},
        JOB_STATUS_STREAM: {"notifications"},
        **{key: {"errors"} for key in rejected},
    }  # never the dead-letter stream
    assert set(streams_read(keys)) == {
        *accepted,
        *rejected,
        FILES_STREAM,
        IMPORTS_STREAM,
        JOB_EVENTS_STREAM,
        JOB_STATUS_STREAM,
        DLQ_STREAM,
    }


def test_the_cli_offers_the_registered_consumers_and_projections() -> None:
    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command")
    choices = {
        name: next(action.choices for action in sub._actions if action.dest in ("name", "projection"))
        for name, sub in commands.choices.items()
        if name in ("consume", "replay")
    }
    assert tuple(choices["consume"]) == CONSUMER_NAMES
    assert tuple(choices["replay"]) == (*PROJECTIONS, "all")


def test_the_cli_starts_without_importing_the_consumers() -> None:
    """Its choices are read from the registries only when that command's argument is checked or its help shown."""
    code = (
        "import sys, ingestro.cli.main;"
        " print(sorted(m for m in sys.modules if m.split('.')[0] in {'consumers', 'projections'}))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_an_unknown_consumer_is_refused_with_the_choices() -> None:
    with pytest.raises(
        UnknownConsumer, match="unknown consumer 'nope'; choose from parser, fetcher, data, errors, jobs, notifications"
    ):
        consumer_group("nope")


async def test_each_projection_owns_tables_that_exist_and_shares_only_rows_named_for_it(stack: Stack) -> None:
    owned = {name: await projection(stack.pool).tables() for name, projection in PROJECTIONS.items()}
    assert owned == {"data": ("contacts",), "errors": ("validation_errors",), "jobs": ("jobs", "job_batches")}
    shared = {name: projection.shared_tables for name, projection in PROJECTIONS.items()}
    assert shared == {"data": ("applied_batches",), "errors": ("applied_batches",), "jobs": ()}
    for table in {table for tables in shared.values() for table in tables}:
        columns = await stack.pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
        )
        assert "projection" in {row["column_name"] for row in columns}, table
    every = [table for tables in owned.values() for table in tables]
    assert len(every) == len(set(every)), "two projections own one table"


async def test_the_group_streams_map_is_what_the_running_consumers_read(stack: Stack) -> None:
    stack.start_consumers()
    try:
        deadline = time.monotonic() + 30
        while True:
            found: dict[str, set[str]] = {}
            keys = group_stream_keys(stack.settings.partitions)
            for stream in streams_read(keys):
                if await stack.redis.exists(stream):
                    for group in await stack.redis.xinfo_groups(stream):
                        found.setdefault(group["name"].decode(), set()).add(stream)
            if found == {group: set(streams) for group, streams in keys.items()}:
                break
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.1)
        response = await stack.client.post(
            "/upload",
            content=b"email,first_name,last_name,signup_date\na@example.com,A,B,2024-01-01\nbad,,,\n",
            headers={"content-type": "text/csv"},
        )
        job = await stack.wait_for_job(response.json()["job_id"])
        assert (job["status"], job["rows_accepted"], job["rows_rejected"]) == ("completed", 1, 1)
    finally:
        await stack.stop_consumers()
