"""The ``errors`` projection: store rejected rows in ``validation_errors``."""

from __future__ import annotations

from typing import ClassVar

import asyncpg
import attrs
import redis.asyncio as aioredis
from cattrs import unstructure

from ingestro.domain import codec
from ingestro.domain.events import BatchApplied, Event, RowsRejected
from ingestro.streams.names import ERRORS_GROUP, REJECTED_STREAM
from ingestro.streams.runtime import Entry
from projections import batches
from projections.projection import announce

_COLUMNS = ("job_id", "line", "errors", "raw")


@attrs.define
class ErrorsProjection:
    """Applies RowsRejected batches; announces each applied batch as BatchApplied."""

    name: ClassVar[str] = ERRORS_GROUP
    streams: ClassVar[tuple[str, ...]] = (REJECTED_STREAM,)
    announces: ClassVar[tuple[type[Event], ...]] = (BatchApplied,)
    shared_tables: ClassVar[tuple[str, ...]] = batches.SHARED_TABLES
    facts: ClassVar[str] = batches.FACTS

    pool: asyncpg.Pool
    redis: aioredis.Redis | None = None

    @classmethod
    def in_shadow(cls, pool: asyncpg.Pool, schema: str) -> ErrorsProjection:
        """See ``Projection.in_shadow``: its tables are named unqualified, so ``pool``'s search_path finds them."""
        return cls(pool, None)

    async def __call__(self, entry: Entry) -> None:
        await self.handle_group([entry])

    async def handle_group(self, entries: list[Entry]) -> None:
        """Store the entries' batches in one transaction, then announce each as BatchApplied."""
        await announce(self.redis, await self.apply_entries(entries))

    async def apply_entries(self, entries: list[Entry]) -> list[BatchApplied]:
        """Store the RowsRejected among ``entries`` (other events are ignored) in one transaction; return their
        BatchApplied, announcing nothing."""
        events = [
            event for event in map(codec.decode, (entry.fields for entry in entries)) if isinstance(event, RowsRejected)
        ]
        if events:
            await self.apply_all(events)
        return [BatchApplied(event.job_id, self.name, event.seq, len(event.rows), 0, 0) for event in events]

    async def tables(self) -> tuple[str, ...]:
        return ("validation_errors",)

    async def restore_trimmed(self, stream: str, live: asyncpg.Connection) -> None:
        """Rejected rows live only in their events: nothing to restore."""

    async def lost(self, live: asyncpg.Connection, schema: str) -> dict[str, int]:
        return await batches.lost(live, self.name, schema)

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
