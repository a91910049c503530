"""The ``errors`` projection: store rejected rows in ``validation_errors``."""

from __future__ import annotations

import asyncpg
import attrs
import redis.asyncio as aioredis
from cattrs import unstructure

from ingestro.domain import codec
from ingestro.domain.events import BatchApplied, RowsRejected
from ingestro.streams.names import ERRORS_GROUP
from ingestro.streams.publisher import publish_all
from ingestro.streams.runtime import Entry
from projections import batches

_COLUMNS = ("job_id", "line", "errors", "raw")


@attrs.define
class ErrorsProjection:
    """Applies RowsRejected batches; announces each applied batch as BatchApplied."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    name: str = ERRORS_GROUP

    async def __call__(self, entry: Entry) -> None:
        await self.handle_group([entry])

    async def handle_group(self, entries: list[Entry]) -> None:
        """Store the entries' batches in one transaction, then announce each as BatchApplied."""
        events = await self.apply_entries(entries)
        await publish_all(
            self.redis, [BatchApplied(event.job_id, self.name, event.seq, len(event.rows), 0, 0) for event in events]
        )

    async def apply_entries(self, entries: list[Entry]) -> list[RowsRejected]:
        """Store the RowsRejected among ``entries`` (other events are ignored) in one transaction; announce nothing."""
        events = [
            event for event in map(codec.decode, (entry.fields for entry in entries)) if isinstance(event, RowsRejected)
        ]
        if events:
            await self.apply_all(events)
        return events

    async def apply(self, event: RowsRejected) -> None:
        """Store the batch's rejected rows once; a repeat writes nothing."""
        await self.apply_all([event])

    async def apply_all(self, events: list[RowsRejected]) -> None:
        """Store each batch's rejected rows once, all in one transaction."""
        async with self.pool.acquire() as connection, connection.transaction():
            claimed = await batches.claim(connection, self.name, [(e.job_id, e.seq, len(e.rows)) for e in events])
            records = [
                (event.job_id, row.line, unstructure(row.errors), row.raw)
                for event, fresh in zip(events, claimed, strict=True)
                if fresh
                for row in event.rows
            ]
            if records:
                await connection.copy_records_to_table("validation_errors", records=records, columns=_COLUMNS)
