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
    ParseStarted,
    RowsAccepted,
    RowsRejected,
)
from ingestro.metrics import EVENTS_PUBLISHED
from ingestro.streams import names
from ingestro.streams.connections import text

_STREAMS: dict[type[Event], str] = {
    FileReceived: names.FILES_STREAM,
    ImportRequested: names.IMPORTS_STREAM,
    RowsAccepted: names.ACCEPTED_STREAM,
    RowsRejected: names.REJECTED_STREAM,
    ParseStarted: names.JOB_EVENTS_STREAM,
    ParseCompleted: names.JOB_EVENTS_STREAM,
    ParseFailed: names.JOB_EVENTS_STREAM,
    BatchApplied: names.JOB_EVENTS_STREAM,
    JobStatusChanged: names.JOB_STATUS_STREAM,
}


def stream_for(event: Event) -> str:
    """The stream ``event`` is appended to. The one place that routes events to streams."""
    return _STREAMS[type(event)]


async def publish(redis: aioredis.Redis, event: Event) -> str:
    """XADD ``event`` to its stream and return the new entry id."""
    stream = stream_for(event)
    entry_id = await redis.xadd(stream, codec.encode(event))  # type: ignore[arg-type]
    EVENTS_PUBLISHED.labels(stream, event.type_name).inc()
    return text(entry_id)


async def publish_all(redis: aioredis.Redis, events: Sequence[Event]) -> None:
    """XADD ``events`` in order, in one round trip (a pipeline, not a transaction)."""
    if not events:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(stream_for(event), codec.encode(event))  # type: ignore[arg-type]
        await pipe.execute()
    for event in events:
        EVENTS_PUBLISHED.labels(stream_for(event), event.type_name).inc()
