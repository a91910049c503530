"""What the row streams cost during a benchmark run: Redis bytes per row, peak backlog, codec CPU per row."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs
import redis.asyncio as aioredis

from ingestro.config import Settings
from ingestro.domain import codec
from ingestro.domain.events import RowsAccepted
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.backpressure import Backpressure, row_stream_readers
from ingestro.streams.names import ACCEPTED_STREAM, ROW_STREAMS, partition_keys, stream_keys

#: The bench's processes run with the default INGESTRO_PARTITIONS (their environment holds no INGESTRO_*).
PARTITIONS = Settings.from_env({}).partitions

#: Entries of the accepted-rows stream decoded and encoded again to time the codec.
_TIMED_ENTRIES = 40
_POLL_S = 0.1


@attrs.frozen
class StreamFigures:
    #: MEMORY USAGE of the accepted-rows stream per accepted row; None when retention trimmed it meanwhile.
    redis_bytes_per_row: float | None
    #: The most entries one row stream held unacked by a group reading it, sampled every 0.1 s.
    peak_backlog: int
    #: CPU per row of the parser's encode (codec.encode of a RowsAccepted) and of the projection's decode.
    encode_us_per_row: float | None
    decode_us_per_row: float | None


@attrs.define
class BacklogSampler:
    """Samples the row streams' backlog (as the parser's backpressure reads it) until stopped."""

    redis: aioredis.Redis
    peak: int = 0
    _stop: asyncio.Event = attrs.field(factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> int:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.peak

    async def _run(self) -> None:
        readers = row_stream_readers(stream_keys(ROW_STREAMS, PARTITIONS), group_stream_keys(PARTITIONS))
        backpressure = Backpressure(self.redis, readers, 0)
        while not self._stop.is_set():
            self.peak = max(self.peak, *(await backpressure.backlogs()).values(), 0)
            await asyncio.sleep(_POLL_S)


async def stream_figures(redis: aioredis.Redis, accepted_rows: int, peak_backlog: int) -> StreamFigures:
    """The figures of the run just finished, read from its Redis."""
    accepted = partition_keys(ACCEPTED_STREAM, PARTITIONS)
    used = sum([await redis.memory_usage(key, samples=0) or 0 for key in accepted if await redis.exists(key)]) or None
    entries: Any = [entry for key in accepted for entry in await redis.xrange(key, count=_TIMED_ENTRIES) or []]
    entries = entries[:_TIMED_ENTRIES]
    batches, rows = [], 0
    started = time.process_time()
    for _, fields in entries:
        event = codec.decode(fields)
        assert isinstance(event, RowsAccepted)
        batches.append(event)
        rows += len(event.rows)
    decode_s = time.process_time() - started
    started = time.process_time()
    for event in batches:
        codec.encode(event)
    encode_s = time.process_time() - started
    stored = sum([await redis.xlen(key) for key in accepted])
    return StreamFigures(
        # Retention may have trimmed some entries: the bytes then stand for fewer rows than were accepted.
        redis_bytes_per_row=used / accepted_rows if used and accepted_rows and stored else None,
        peak_backlog=peak_backlog,
        encode_us_per_row=1e6 * encode_s / rows if rows else None,
        decode_us_per_row=1e6 * decode_s / rows if rows else None,
    )
