"""Metrics: a scrape after an ingestion shows what happened; the backlog gauges read Redis right.

The API and the consumers run in this process and share prometheus_client's
process-wide registry, so counters are compared before and after, never as
absolute values. The backlog and job gauges are read fresh per scrape from the
(emptied) Redis and PostgreSQL, so they are compared as they are.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ingestro.api.metrics import SERVER_FAILURES, _refusal
from ingestro.api.problems import Problem
from ingestro.devtools.samples import write_sample
from ingestro.devtools.servers import free_port
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.collector import SharedStateCollector, read_backlog, streams_read
from ingestro.streams.names import (
    ACCEPTED_STREAM,
    DATA_GROUP,
    ERRORS_GROUP,
    FILES_STREAM,
    JOB_EVENTS_STREAM,
    REJECTED_STREAM,
    partition_key,
    partition_keys,
)
from tests.stack import Stack
from tests.test_api import CSV

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def counter(name: str, **labels: str) -> float:
    """The current value of a sample of the process-wide registry (0 before its first increment)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples_of(families: Iterable[Metric]) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


async def scrape(stack: Stack) -> Samples:
    response = await stack.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples_of(text_string_to_metric_families(response.text))


def at(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_a_scrape_after_an_ingestion_shows_the_counts_it_made(stack: Stack) -> None:
    out = io.BytesIO()
    expected = write_sample(out, "csv", 1000, seed=5)
    content = out.getvalue()
    batch_size = stack.settings.batch_size
    accepted_batches = math.ceil(expected.valid / batch_size)
    rejected_batches = math.ceil(expected.invalid / batch_size)
    assert accepted_batches > 1 and rejected_batches >= 1
    # name, labels -> by how much it must move
    moves: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        ("ingestro_uploads_total", (("outcome", "accepted"), ("format", "csv"))): 1,
        ("ingestro_upload_bytes_total", (("format", "csv"),)): len(content),
        ("ingestro_rows_parsed_total", (("dataset", "contacts"), ("outcome", "accepted"))): expected.valid,
        ("ingestro_rows_parsed_total", (("dataset", "contacts"), ("outcome", "rejected"))): expected.invalid,
        ("ingestro_rows_upserted_total", (("dataset", "contacts"), ("outcome", "inserted"))): expected.distinct,
        ("ingestro_rows_upserted_total", (("dataset", "contacts"), ("outcome", "duplicate"))): expected.duplicates,
        ("ingestro_events_published_total", (("stream", FILES_STREAM), ("type", "FileReceived"))): 1,
        ("ingestro_events_published_total", (("stream", ACCEPTED_STREAM), ("type", "RowsAccepted"))): accepted_batches,
        ("ingestro_events_published_total", (("stream", REJECTED_STREAM), ("type", "RowsRejected"))): rejected_batches,
        ("ingestro_events_published_total", (("stream", JOB_EVENTS_STREAM), ("type", "ParseStarted"))): 1,
        ("ingestro_events_published_total", (("stream", JOB_EVENTS_STREAM), ("type", "ParseCompleted"))): 1,
        ("ingestro_events_published_total", (("stream", JOB_EVENTS_STREAM), ("type", "BatchApplied"))): accepted_batches
        + rejected_batches,
        ("ingestro_entries_processed_total", (("group", "parser"), ("outcome", "handled"))): 1,
        ("ingestro_entries_processed_total", (("group", "data"), ("outcome", "handled"))): accepted_batches,
        ("ingestro_entries_processed_total", (("group", "errors"), ("outcome", "handled"))): rejected_batches,
        # FileReceived, ParseStarted, ParseCompleted, then one BatchApplied per batch.
        ("ingestro_entries_processed_total", (("group", "jobs"), ("outcome", "handled"))): 3
        + accepted_batches
        + rejected_batches,
        ("ingestro_entries_processed_total", (("group", "data"), ("outcome", "failed"))): 0,
        ("ingestro_redeliveries_total", (("group", "data"),)): 0,
        ("ingestro_reclaims_total", (("group", "data"),)): 0,
        ("ingestro_entries_dead_lettered_total", (("group", "data"),)): 0,
    }
    before = {key: counter(key[0], **dict(key[1])) for key in moves}
    calls_before = counter("ingestro_entry_handling_seconds_count", group="data")

    stack.start_consumers()
    job = await stack.ingest(content)
    assert job["status"] == "completed"
    await stack.wait_idle()
    samples = await scrape(stack)

    moved = {key: (at(samples, key[0], **dict(key[1])) or 0.0) - before[key] for key in moves}
    assert moved == moves
    # One observation per handler call: a batch alone, or several applied in one transaction.
    calls = (at(samples, "ingestro_entry_handling_seconds_count", group="data") or 0.0) - calls_before
    assert 1 <= calls <= accepted_batches
    # Shared state, read from Redis and PostgreSQL for this scrape (both were emptied for this test).
    assert at(samples, "ingestro_jobs", status="completed") == 1
    assert at(samples, "ingestro_jobs", status="failed") == 0
    assert at(samples, "ingestro_stream_length", stream=FILES_STREAM) == 1
    partitions = stack.settings.partitions
    accepted, rejected = partition_keys(ACCEPTED_STREAM, partitions), partition_keys(REJECTED_STREAM, partitions)
    assert sum(at(samples, "ingestro_stream_length", stream=key) or 0 for key in accepted) == accepted_batches
    by_group = [(key, DATA_GROUP) for key in accepted] + [(key, ERRORS_GROUP) for key in rejected]
    for stream, group in [*by_group, (FILES_STREAM, "jobs")]:
        assert at(samples, "ingestro_group_lag", stream=stream, group=group) == 0
        assert at(samples, "ingestro_group_pending", stream=stream, group=group) == 0
        assert at(samples, "ingestro_group_oldest_pending_idle_seconds", stream=stream, group=group) == 0
        assert (at(samples, "ingestro_group_consumers", stream=stream, group=group) or 0) >= 1


@pytest.mark.parametrize(
    ("content_type", "params", "content", "status", "outcome", "file_format"),
    [
        ("application/pdf", {}, b"%PDF", 415, "unsupported_type", "unknown"),
        ("text/csv", {}, b"", 400, "bad_request", "csv"),
        ("application/x-ndjson", {"dataset": "nope"}, b"{}", 404, "unknown_dataset", "ndjson"),
    ],
)
async def test_refused_uploads_are_counted_by_why(
    stack: Stack, content_type: str, params: dict[str, str], content: bytes, status: int, outcome: str, file_format: str
) -> None:
    before = counter("ingestro_uploads_total", outcome=outcome, format=file_format)
    headers = {"content-type": content_type}
    response = await stack.client.post("/upload", content=content, headers=headers, params=params)
    assert response.status_code == status
    assert counter("ingestro_uploads_total", outcome=outcome, format=file_format) == before + 1


async def test_an_idempotency_conflict_is_a_refusal_not_a_server_failure(stack: Stack) -> None:
    failures = [counter("ingestro_uploads_total", outcome=o, format="csv") for o in SERVER_FAILURES]
    reused = counter("ingestro_uploads_total", outcome="key_reused", format="csv")
    headers = {"content-type": "text/csv", "idempotency-key": "k"}
    assert (await stack.client.post("/upload", content=CSV, headers=headers)).status_code == 202
    assert (await stack.client.post("/upload", content=CSV + b"\n", headers=headers)).status_code == 422
    assert counter("ingestro_uploads_total", outcome="key_reused", format="csv") == reused + 1
    assert [counter("ingestro_uploads_total", outcome=o, format="csv") for o in SERVER_FAILURES] == failures


def test_only_5xx_count_as_server_failures() -> None:
    for status in range(400, 500):
        assert _refusal(Problem(status, "", "")) not in SERVER_FAILURES, status
    for status in (500, 502, 503, 504):
        assert _refusal(Problem(status, "", "")) in SERVER_FAILURES, status
    assert _refusal(ConnectionError("redis is gone")) == "unavailable"
    assert _refusal(ValueError("a bug")) == "error"


async def test_the_backlog_shows_lag_pending_and_idle_and_omits_a_lag_redis_cannot_tell(stack: Stack) -> None:
    accepted = partition_key(ACCEPTED_STREAM, 0, stack.settings.partitions)
    streams = streams_read(group_stream_keys(stack.settings.partitions))
    ids = [await stack.redis.xadd(accepted, {"n": str(n)}) for n in range(3)]
    await stack.redis.xgroup_create(accepted, DATA_GROUP, id="0")
    await stack.redis.xreadgroup(DATA_GROUP, "reader", {accepted: ">"}, count=1)

    samples = samples_of(await read_backlog(stack.redis, streams))
    by_group = {"stream": accepted, "group": DATA_GROUP}
    assert at(samples, "ingestro_stream_length", stream=accepted) == 3
    assert at(samples, "ingestro_stream_length", stream=FILES_STREAM) == 0  # no such stream yet
    assert at(samples, "ingestro_group_lag", **by_group) == 2
    assert at(samples, "ingestro_group_pending", **by_group) == 1
    assert at(samples, "ingestro_group_consumers", **by_group) == 1
    assert (at(samples, "ingestro_group_oldest_pending_idle_seconds", **by_group) or 0) >= 0

    # Deleting an entry the group has not read yet leaves Redis 7 unable to tell the lag.
    await stack.redis.xdel(accepted, ids[2])
    samples = samples_of(await read_backlog(stack.redis, streams))
    assert at(samples, "ingestro_group_lag", **by_group) is None
    assert at(samples, "ingestro_group_pending", **by_group) == 1


async def test_an_unreachable_redis_drops_the_backlog_and_counts_the_error(stack: Stack) -> None:
    before = counter("ingestro_collector_errors_total", source="redis")
    # No retries: refused at once, rather than after redis-py's backoff or the collector's timeout.
    unreachable = aioredis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    collector = SharedStateCollector(streams_read(group_stream_keys(stack.settings.partitions)))
    try:
        await collector.refresh(unreachable, stack.pool)
    finally:
        await unreachable.aclose()
    names = {family.name for family in collector.collect()}
    assert names == {"ingestro_jobs"}  # from PostgreSQL, which answered
    assert counter("ingestro_collector_errors_total", source="redis") == before + 1
