"""The ``data`` projection: upsert accepted rows into the dataset's typed table."""

from __future__ import annotations

from functools import cache
from typing import Any

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro import codec
from ingestro.database import quote_ident
from ingestro.datasets import SQL_TYPES, Dataset, FieldType, get_dataset
from ingestro.events import BatchApplied, RowsAccepted
from ingestro.metrics import ROWS_UPSERTED
from ingestro.names import DATA_GROUP
from ingestro.publisher import publish_all
from ingestro.runtime import Entry
from projections import batches

_BOOKKEEPING = ("content_hash", "first_job_id", "first_line")


@attrs.frozen
class UpsertSql:
    staging: str
    create_staging: str
    columns: tuple[str, ...]
    #: Upserts the staged rows; answers (batch, rows inserted) per staged batch.
    upsert: str


#: Field types staged as text and cast by PostgreSQL, which parses them faster than Python.
_CAST_FROM_TEXT = {FieldType.DATE}


@cache
def upsert_sql(dataset: Dataset) -> UpsertSql:
    """The statements that stage batches and upsert them, in content-hash order, into the dataset's table."""
    table = quote_ident(dataset.table)
    staging = f"staging_{dataset.table}"
    columns = (*dataset.field_names, *_BOOKKEEPING, "batch")
    targets = ", ".join(quote_ident(c) for c in (*dataset.field_names, *_BOOKKEEPING))
    sources = ", ".join(
        f"{quote_ident(f.name)}::{SQL_TYPES[f.type]}" if f.type in _CAST_FROM_TEXT else quote_ident(f.name)
        for f in dataset.fields
    )
    upsert = f"""
        WITH upserted AS (
            INSERT INTO {table} ({targets}, last_job_id, last_line)
            SELECT {sources}, content_hash, first_job_id, first_line, first_job_id, first_line
              FROM {quote_ident(staging)} ORDER BY content_hash
            ON CONFLICT (content_hash) DO UPDATE
               SET updated_at = now(), last_job_id = EXCLUDED.last_job_id, last_line = EXCLUDED.last_line
            RETURNING content_hash, (xmax = 0) AS inserted
        )
        SELECT s.batch, count(*) FILTER (WHERE u.inserted)
          FROM upserted u JOIN {quote_ident(staging)} s USING (content_hash) GROUP BY s.batch
    """
    staged = [
        f"{quote_ident(f.name)} {'text' if f.type in _CAST_FROM_TEXT else SQL_TYPES[f.type]}" for f in dataset.fields
    ]
    staged += ["content_hash text", "first_job_id uuid", "first_line bigint", "batch integer"]
    create = f"CREATE TEMP TABLE IF NOT EXISTS {quote_ident(staging)} ({', '.join(staged)}) ON COMMIT DELETE ROWS"
    return UpsertSql(staging, create, columns, upsert)


def staged_records(dataset: Dataset, batches_: list[RowsAccepted]) -> list[tuple[Any, ...]]:
    """One record per distinct row of ``batches_`` (the first occurrence wins), tagged with its batch's index."""
    names = dataset.field_names
    seen: set[str] = set()
    records: list[tuple[Any, ...]] = []
    for index, batch in enumerate(batches_):
        for row in batch.rows:
            if row.content_hash in seen:
                continue
            seen.add(row.content_hash)
            records.append((*map(row.values.get, names), row.content_hash, batch.job_id, row.line, index))
    return records


@attrs.define
class DataProjection:
    """Applies RowsAccepted batches; announces each applied batch as BatchApplied."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    name: str = DATA_GROUP

    async def __call__(self, entry: Entry) -> None:
        await self.handle_group([entry])

    async def handle_group(self, entries: list[Entry]) -> None:
        """Apply the entries' batches in one transaction, then announce each as BatchApplied."""
        events = [event for event in map(codec.decode, (entry.fields for entry in entries)) if isinstance(event, RowsAccepted)]
        if not events:
            return
        outcomes = await self.apply_all(events)
        await publish_all(
            self.redis,
            [
                BatchApplied(event.job_id, self.name, event.seq, outcome.rows, outcome.inserted, outcome.duplicate)
                for event, outcome in zip(events, outcomes)
            ],
        )

    async def apply(self, event: RowsAccepted) -> batches.Outcome:
        """Apply one batch once; on a repeat, return the outcome stored the first time."""
        [outcome] = await self.apply_all([event])
        return outcome

    async def apply_all(self, events: list[RowsAccepted]) -> list[batches.Outcome]:
        """Apply each batch once, all in one transaction; a repeat gets the outcome stored the first time.

        A row repeated within the batches counts as a duplicate of the batch it repeats in.
        """
        async with self.pool.acquire() as connection, connection.transaction():
            outcomes: dict[int, batches.Outcome] = {}
            fresh: dict[str, list[int]] = {}
            for index, event in enumerate(events):
                if await batches.claim(connection, self.name, event.job_id, event.seq, len(event.rows)):
                    fresh.setdefault(event.dataset, []).append(index)
                else:
                    outcomes[index] = await batches.stored(connection, self.name, event.job_id, event.seq)
            first_time: list[tuple[str, batches.Outcome]] = []
            for dataset_name, indices in fresh.items():
                dataset = get_dataset(dataset_name)
                sql = upsert_sql(dataset)
                applied = [events[index] for index in indices]
                await connection.execute(sql.create_staging)
                await connection.copy_records_to_table(
                    sql.staging, records=staged_records(dataset, applied), columns=sql.columns
                )
                inserted = dict(await connection.fetch(sql.upsert))
                for position, index in enumerate(indices):
                    event = events[index]
                    count = int(inserted.get(position, 0))
                    outcome = batches.Outcome(len(event.rows), count, len(event.rows) - count)
                    await batches.record(connection, self.name, event.job_id, event.seq, outcome)
                    outcomes[index] = outcome
                    first_time.append((dataset.name, outcome))
        # Counted once committed, and only the first time: repeats were answered from storage.
        for dataset_name, outcome in first_time:
            ROWS_UPSERTED.labels(dataset_name, "inserted").inc(outcome.inserted)
            ROWS_UPSERTED.labels(dataset_name, "duplicate").inc(outcome.duplicate)
        return [outcomes[index] for index in range(len(events))]
