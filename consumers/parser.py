"""The ``parser`` consumer: read a stored file and emit its row batches and verdict.

The rule it follows (see ``ingestro.streams.runtime``): whatever is wrong with the file or
its upload (bytes no reader can go on from, an encoding that cannot read it, any error a
reader raises, a dataset or dataset version that does not exist, a stored file that is
gone) fails the job with the reason on the first delivery, with ParseFailed; the rows
read before it stay and are counted. Only the infrastructure's errors (Redis or
PostgreSQL unreachable or refusing writes, the storage failing to give the bytes:
``StorageFailed``) leave the handler, to be retried in place or, after
``INGESTRO_MAX_DELIVERIES``, dead-lettered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable
from typing import ClassVar

import attrs
import redis.asyncio as aioredis

from consumers import ranges
from ingestro.datasets import Dataset, UnknownDataset
from ingestro.datasets.registry import DatasetRegistry
from ingestro.domain import codec
from ingestro.domain.events import (
    Event,
    FileReceived,
    ParseFailed,
    ParseRange,
    ParseStarted,
    RowsAccepted,
    RowsRejected,
)
from ingestro.domain.limits import DEFAULT_LIMITS, Limits
from ingestro.formats.boundaries import plan_ranges
from ingestro.formats.parsing import parse_file
from ingestro.metrics import ROWS_PARSED
from ingestro.storage import Storage
from ingestro.streams.backpressure import Backpressure
from ingestro.streams.names import FILES_STREAM, PARSER_GROUP
from ingestro.streams.publisher import publish, publish_all
from ingestro.streams.runtime import Entry

log = logging.getLogger(__name__)

#: Batches published per Redis round trip.
_EVENTS_PER_ROUND_TRIP = 8


@attrs.define
class Parser:
    """Handles FileReceived. Parsing a file again (a redelivery) emits the same batches."""

    #: Its consumer group, and the streams that group reads.
    name: ClassVar[str] = PARSER_GROUP
    streams: ClassVar[tuple[str, ...]] = (FILES_STREAM,)

    redis: aioredis.Redis
    storage: Storage
    registry: DatasetRegistry
    batch_size: int = 2000
    limits: Limits = DEFAULT_LIMITS
    #: Pauses publishing while the row streams' backlog is over its bound; None: never pauses.
    backpressure: Backpressure | None = None
    #: The deployment's partitions per row stream (``INGESTRO_PARTITIONS``): where the batches go.
    partitions: int = attrs.field(kw_only=True)
    #: A file of twice this many bytes or more is parsed in ranges across the group (``consumers.ranges``); 0: never.
    range_bytes: int = attrs.field(default=0, kw_only=True)
    #: Parse a file's ranges here, one after the other, rather than handing them to the group (``ingestro reparse``).
    inline_ranges: bool = attrs.field(default=False, kw_only=True)

    async def __call__(self, entry: Entry) -> None:
        event = codec.decode(entry.fields)
        if isinstance(event, FileReceived):
            await self.parse(event, entry.id)
        elif isinstance(event, ParseRange):
            await self.parse_range(event)

    async def _dataset(self, event: FileReceived) -> Dataset | str:
        """The dataset version ``event``'s file is checked against, or why there is none."""
        try:
            if event.dataset_version is None:
                return await self.registry.latest(event.dataset)
            return await self.registry.version(event.dataset, event.dataset_version)
        except UnknownDataset as unknown:
            return f"unknown dataset {unknown}"

    async def parse(self, event: FileReceived, position: str | None) -> None:
        """Parse the file of ``event``, whose stream id is ``position`` (its upload order), and emit its events."""
        await publish(self.redis, ParseStarted(event.job_id))
        dataset = await self._dataset(event)
        if isinstance(dataset, str):
            await publish(self.redis, ParseFailed(event.job_id, dataset, None, 0, 0, 0))
            return
        if not await self.storage.exists(event.storage_key):
            await publish(self.redis, ParseFailed(event.job_id, "the stored file is missing", None, 0, 0, 0))
            return
        log.info("parsing", extra={"job_id": event.job_id, "format": event.format, "bytes": event.bytes})
        # The readers open the file as they need it (more than once: see ingestro.formats.readers),
        # from whichever storage.
        stored = functools.partial(self.storage.open, event.storage_key)
        plan = await asyncio.to_thread(
            plan_ranges, stored, event.format, event.options, self.limits, self.range_bytes, self.batch_size
        )
        if plan is not None:
            log.info("parsing in ranges", extra={"job_id": event.job_id, "ranges": len(plan.ranges)})
            tasks = ranges.work(event, position, plan)
            if not self.inline_ranges:
                await publish_all(self.redis, tasks)
                return
            outcomes: list[ranges.RangeOutcome] = []
            for task in tasks:
                events = ranges.range_events(task, stored, dataset, self.batch_size, self.limits, outcomes)
                await self._publish_pipelined(dataset.name, events)
            await publish(self.redis, ranges.verdict(event.job_id, outcomes))
            return
        parsed_events = parse_file(
            event.job_id, stored, event.format, dataset, self.batch_size, event.options, self.limits, position
        )
        await self._publish_pipelined(dataset.name, parsed_events)

    async def parse_range(self, task: ParseRange) -> None:
        """Parse one range of a file and emit its batches; the last range recorded emits the job's verdict."""
        received = task.received
        dataset = await self._dataset(received)
        outcomes: list[ranges.RangeOutcome] = []
        if isinstance(dataset, str):
            outcomes.append(ranges.failed(dataset))
        elif not await self.storage.exists(received.storage_key):
            outcomes.append(ranges.failed("the stored file is missing"))
        else:
            stored = functools.partial(self.storage.open, received.storage_key)
            events = ranges.range_events(task, stored, dataset, self.batch_size, self.limits, outcomes)
            await self._publish_pipelined(dataset.name, events)
        everything = await ranges.record(self.redis, task, outcomes[0])
        if everything is not None:
            await publish(self.redis, ranges.verdict(received.job_id, everything))

    async def _publish_pipelined(self, dataset: str, events: Iterable[Event]) -> None:
        """Publish in order, a few batches per round trip, parsing on while Redis appends the last chunk."""
        in_flight: asyncio.Task[None] | None = None
        chunk: list[Event] = []
        try:
            for parsed in events:
                chunk.append(parsed)
                if isinstance(parsed, RowsAccepted):
                    ROWS_PARSED.labels(dataset, "accepted").inc(len(parsed.rows))
                elif isinstance(parsed, RowsRejected):
                    ROWS_PARSED.labels(dataset, "rejected").inc(len(parsed.rows))
                if len(chunk) >= _EVENTS_PER_ROUND_TRIP:
                    if in_flight is not None:
                        await in_flight  # keeps the order, and at most one chunk in memory unsent
                    if self.backpressure is not None:
                        await self.backpressure.wait_for_room()
                    in_flight = asyncio.create_task(publish_all(self.redis, chunk, self.partitions))
                    chunk = []
                    await asyncio.sleep(0)  # let it send before parsing on
            if in_flight is not None:
                await in_flight
                in_flight = None
            await publish_all(self.redis, chunk, self.partitions)
        finally:
            if in_flight is not None:
                in_flight.cancel()
