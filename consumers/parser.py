"""The ``parser`` consumer: read a stored file and emit its row batches and verdict."""

from __future__ import annotations

import logging

import attrs
import redis.asyncio as aioredis

from ingestro import codec
from ingestro.datasets import UnknownDataset, get_dataset
from ingestro.events import FileReceived, ParseFailed, ParseStarted
from ingestro.names import PARSER_GROUP
from ingestro.parsing import parse_file
from ingestro.publisher import publish
from ingestro.runtime import Entry
from ingestro.storage import UploadStorage

log = logging.getLogger(__name__)


@attrs.define
class Parser:
    """Handles FileReceived. Parsing a file again (a redelivery) emits the same batches."""

    redis: aioredis.Redis
    storage: UploadStorage
    batch_size: int = 500
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
        path = self.storage.path(event.storage_key)
        if not path.exists():
            await publish(self.redis, ParseFailed(event.job_id, "the stored file is missing", None, 0, 0, 0))
            return
        log.info("parsing", extra={"job_id": event.job_id, "format": event.format, "bytes": event.bytes})
        for parsed in parse_file(event.job_id, path, event.format, dataset, self.batch_size):
            await publish(self.redis, parsed)
