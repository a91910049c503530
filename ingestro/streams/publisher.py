"""Append events to their streams."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from ingestro.domain import codec
from ingestro.domain.events import (
    BatchApplied,
    Event,
    FileReceived,
    ImportRequested,
    JobStatusChanged,
    ParseCompleted,
    ParseFailed,
    ParseRange,
    ParseStarted,
    RowsAccepted,
    RowsRejected,
)
from ingestro.metrics import EVENTS_PUBLISHED
from ingestro.streams import names, replication
from ingestro.streams.connections import text

_STREAMS: dict[type[Event], str] = {
    FileReceived: names.FILES_STREAM,
    ParseRange: names.FILES_STREAM,
    ImportRequested: names.IMPORTS_STREAM,
    RowsAccepted: names.ACCEPTED_STREAM,
    RowsRejected: names.REJECTED_STREAM,
    ParseStarted: names.JOB_EVENTS_STREAM,
    ParseCompleted: names.JOB_EVENTS_STREAM,
    ParseFailed: names.JOB_EVENTS_STREAM,
    BatchApplied: names.JOB_EVENTS_STREAM,
    JobStatusChanged: names.JOB_STATUS_STREAM,
}


def stream_for(event: Event, partitions: int | None = None) -> str:
    """The stream key ``event`` is appended to: the one place that routes events to streams. A batch of rows goes
    to the partition ``names.partition_of(job, seq)`` of its row stream, of ``partitions`` (required for those)."""
    stream = _STREAMS[type(event)]
    if isinstance(event, RowsAccepted | RowsRejected):
        if partitions is None:
            raise ValueError(f"{event.type_name} needs the deployment's partitions to be routed")
        return names.partition_key(stream, names.partition_of(event.job_id, event.seq, partitions), partitions)
    return stream


async def publish(redis: aioredis.Redis, event: Event, partitions: int | None = None) -> str:
    """XADD ``event`` to its stream and return the new entry id; ``partitions``: see ``stream_for``. With replicas
    required of ``redis`` (``ingestro.streams.replication``), returns once they hold it, else raises
    ``NotReplicated``."""
    return (await _append(redis, [event], partitions))[0]


async def publish_all(redis: aioredis.Redis, events: Sequence[Event], partitions: int | None = None) -> None:
    """XADD ``events``, in one round trip per Redis node (a pipeline, not a transaction): in order within each
    stream; ``partitions``: see ``stream_for``; replicas: as ``publish``."""
    if events:
        await _append(redis, events, partitions)


async def _append(redis: aioredis.Redis, events: Sequence[Event], partitions: int | None) -> list[str]:
    streams = [stream_for(event, partitions) for event in events]
    async with redis.pipeline(transaction=False) as pipe:
        for stream, event in zip(streams, events, strict=True):
            pipe.xadd(stream, codec.encode(event))  # type: ignore[arg-type]
        waits = replication.queue_waits(redis, pipe, streams)
        replies = await pipe.execute()
    for stream, event in zip(streams, events, strict=True):
        EVENTS_PUBLISHED.labels(names.logical_stream(stream), event.type_name).inc()
    replication.check_waits(redis, replies[len(replies) - waits :])
    return [text(entry_id) for entry_id in replies[: len(events)]]
