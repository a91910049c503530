"""The ``parser`` consumer: read a stored file and emit its row batches and verdict."""

from __future__ import annotations

import functools
import logging

import attrs
import redis.asyncio as aioredis

from ingestro import codec
from ingestro.datasets import UnknownDataset, get_dataset
from ingestro.events import FileReceived, ParseFailed, ParseStarted, RowsAccepted, RowsRejected
from ingestro.limits import DEFAULT_LIMITS, Limits
from ingestro.metrics import ROWS_PARSED
from ingestro.names import PARSER_GROUP
from ingestro.parsing import parse_file
from ingestro.publisher import publish
from ingestro.runtime import Entry
from ingestro.storage import Storage

log = logging.getLogger(__name__)


@attrs.define
class Parser:
    """Handles FileReceived. Parsing a file again (a redelivery) emits the same batches."""

    redis: aioredis.Redis
    storage: Storage
    batch_size: int = 500
    limits: Limits = DEFAULT_LIMITS
    name: str = PARSER_GROUP

    async def __call__(self, entry: Entry) -> None:
        event = codec.decode(entry.fields)
        if isinstance(event, FileReceived):
            await self.parse(event)

    async def parse(self, event: FileReceived) -> None:
        await publish(self.redis, ParseStarted(event.job_id))
        try:
            dataset = get_dataset(event.dataset)
        except UnknownDataset:
            await publish(self.redis, ParseFailed(event.job_id, f"unknown dataset {event.dataset!r}", None, 0, 0, 0))
            return
        if not await self.storage.exists(event.storage_key):
            await publish(self.redis, ParseFailed(event.job_id, "the stored file is missing", None, 0, 0, 0))
            return
        log.info("parsing", extra={"job_id": event.job_id, "format": event.format, "bytes": event.bytes})
        # The readers open the file as they need it (more than once: see ingestro.readers), from whichever storage.
        stored = functools.partial(self.storage.open, event.storage_key)
        parsed_events = parse_file(
            event.job_id, stored, event.format, dataset, self.batch_size, event.options, self.limits
        )
        for parsed in parsed_events:
            await publish(self.redis, parsed)
            if isinstance(parsed, RowsAccepted):
                ROWS_PARSED.labels(dataset.name, "accepted").inc(len(parsed.rows))
            elif isinstance(parsed, RowsRejected):
                ROWS_PARSED.labels(dataset.name, "rejected").inc(len(parsed.rows))
