"""The ``errors`` projection: store rejected rows in ``validation_errors``."""

from __future__ import annotations

import asyncpg
import attrs
import redis.asyncio as aioredis
from cattrs import unstructure

from ingestro import codec
from ingestro.events import BatchApplied, RowsRejected
from ingestro.names import ERRORS_GROUP
from ingestro.publisher import publish
from ingestro.runtime import Entry
from projections import batches

_COLUMNS = ("job_id", "line", "errors", "raw")


@attrs.define
class ErrorsProjection:
    """Applies RowsRejected batches; announces each applied batch as BatchApplied."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    name: str = ERRORS_GROUP

    async def __call__(self, entry: Entry) -> None:
        event = codec.decode(entry.fields)
        if not isinstance(event, RowsRejected):
            return
        await self.apply(event)
        await publish(self.redis, BatchApplied(event.job_id, self.name, event.seq, len(event.rows), 0, 0))

    async def apply(self, event: RowsRejected) -> None:
        """Store the batch's rejected rows once; a repeat writes nothing."""
        records = [(event.job_id, row.line, unstructure(row.errors), row.raw) for row in event.rows]
        async with self.pool.acquire() as connection, connection.transaction():
            if await batches.claim(connection, self.name, event.job_id, event.seq, len(event.rows)):
                await connection.copy_records_to_table("validation_errors", records=records, columns=_COLUMNS)
