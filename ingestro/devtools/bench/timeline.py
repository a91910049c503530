"""When each stage of a job ran, read back from its streams.

A stream entry's id starts with the milliseconds of the Redis clock when it was
appended, so the entries a stage appends say when it worked, without the
stages reporting anything. The bench runs one job on fresh servers, so every
entry is that job's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import redis.asyncio as aioredis

from ingestro.devtools.bench.streams_memory import PARTITIONS
from ingestro.domain import codec
from ingestro.domain.events import BatchApplied, ParseCompleted, ParseStarted
from ingestro.streams.connections import text
from ingestro.streams.names import ACCEPTED_STREAM, DATA_GROUP, JOB_EVENTS_STREAM, partition_keys
from ingestro.streams.retention import id_key

_PAGE = 1000


@attrs.frozen
class Timeline:
    """Epoch seconds (ms resolution) at which the job's stages started and ended."""

    parse_started: float
    parse_completed: float
    #: When the data projection could start: the first batch of valid rows was appended, or the
    #: projections were started (``--staged``), whichever was later.
    projection_started: float
    last_data_batch_applied: float

    @property
    def parse_s(self) -> float:
        return self.parse_completed - self.parse_started

    @property
    def projection_s(self) -> float:
        return self.last_data_batch_applied - self.projection_started


def _seconds(entry_id: Any) -> float:
    return int(text(entry_id).partition("-")[0]) / 1000


async def _entries(redis: aioredis.Redis, stream: str) -> AsyncIterator[tuple[Any, dict[bytes, bytes]]]:
    start = "-"
    while True:
        page: Any = await redis.xrange(stream, min=start, count=_PAGE)
        for entry in page:
            yield entry
        if len(page) < _PAGE:
            return
        last = page[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))


async def read_timeline(redis: aioredis.Redis, projections_started: float = 0.0) -> Timeline | None:
    """The stages of the one job on ``redis``'s streams; None if it has no parse or no valid rows to time."""
    started = completed = data_done = None
    async for entry_id, fields in _entries(redis, JOB_EVENTS_STREAM):
        event = codec.decode(fields)
        if isinstance(event, ParseStarted) and started is None:
            started = _seconds(entry_id)
        elif isinstance(event, ParseCompleted):
            completed = _seconds(entry_id)
        elif isinstance(event, BatchApplied) and event.projection == DATA_GROUP:
            data_done = _seconds(entry_id)
    # The first batch went to one partition of the accepted rows; the earliest first entry of them all is it.
    firsts: Any = [
        entry for key in partition_keys(ACCEPTED_STREAM, PARTITIONS) for entry in await redis.xrange(key, count=1) or []
    ]
    first = sorted(firsts, key=lambda entry: id_key(text(entry[0])))
    if started is None or completed is None or data_done is None or not first:
        return None
    return Timeline(started, completed, max(_seconds(first[0][0]), projections_started), data_done)
