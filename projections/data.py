"""The ``data`` projection: upsert accepted rows into the dataset's typed table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import cache
from typing import Any

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro import codec
from ingestro.datasets import SQL_TYPES, Dataset, FieldType, get_dataset
from ingestro.events import AcceptedRow, BatchApplied, RowsAccepted
from ingestro.metrics import ROWS_UPSERTED
from ingestro.names import DATA_GROUP
from ingestro.publisher import publish
from ingestro.runtime import Entry
from projections import batches

_TO_COLUMN: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.DATE: date.fromisoformat,
}
_BOOKKEEPING = ("content_hash", "first_job_id", "first_line")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@attrs.frozen
class UpsertSql:
    staging: str
    create_staging: str
    columns: tuple[str, ...]
    upsert: str


@cache
def upsert_sql(dataset: Dataset) -> UpsertSql:
    """The statements that stage a batch and upsert it, in content-hash order, into the dataset's table."""
    table = _ident(dataset.table)
    staging = f"staging_{dataset.table}"
    columns = (*dataset.field_names, *_BOOKKEEPING)
    listed = ", ".join(_ident(c) for c in columns)
    upsert = f"""
        WITH upserted AS (
            INSERT INTO {table} ({listed}, last_job_id, last_line)
            SELECT {listed}, first_job_id, first_line FROM {_ident(staging)} ORDER BY content_hash
            ON CONFLICT (content_hash) DO UPDATE
               SET updated_at = now(), last_job_id = EXCLUDED.last_job_id, last_line = EXCLUDED.last_line
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted) FROM upserted
    """
    staged = [f"{_ident(field.name)} {SQL_TYPES[field.type]}" for field in dataset.fields]
    staged += ["content_hash text", "first_job_id uuid", "first_line bigint"]
    create = f"CREATE TEMP TABLE IF NOT EXISTS {_ident(staging)} ({', '.join(staged)}) ON COMMIT DELETE ROWS"
    return UpsertSql(staging, create, columns, upsert)


def unique_rows(rows: list[AcceptedRow]) -> list[AcceptedRow]:
    """The batch with duplicates collapsed (first line wins), sorted by content hash.

    Sorting makes every consumer lock rows in the same order, so concurrent
    batches cannot deadlock.
    """
    first: dict[str, AcceptedRow] = {}
    for row in rows:
        first.setdefault(row.content_hash, row)
    return sorted(first.values(), key=lambda row: row.content_hash)


def _records(dataset: Dataset, job_id: str, rows: list[AcceptedRow]) -> list[tuple[Any, ...]]:
    convert = [(field.name, _TO_COLUMN.get(field.type)) for field in dataset.fields]
    records = []
    for row in rows:
        values = [
            (value if to_column is None or value is None else to_column(value))
            for name, to_column in convert
            for value in (row.values.get(name),)
        ]
        records.append((*values, row.content_hash, job_id, row.line))
    return records


@attrs.define
class DataProjection:
    """Applies RowsAccepted batches; announces each applied batch as BatchApplied."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    name: str = DATA_GROUP

    async def __call__(self, entry: Entry) -> None:
        event = codec.decode(entry.fields)
        if not isinstance(event, RowsAccepted):
            return
        outcome = await self.apply(event)
        await publish(
            self.redis,
            BatchApplied(event.job_id, self.name, event.seq, outcome.rows, outcome.inserted, outcome.duplicate),
        )

    async def apply(self, event: RowsAccepted) -> batches.Outcome:
        """Apply the batch once; on a repeat, return the outcome stored the first time."""
        dataset = get_dataset(event.dataset)
        sql = upsert_sql(dataset)
        rows = unique_rows(event.rows)
        async with self.pool.acquire() as connection, connection.transaction():
            if not await batches.claim(connection, self.name, event.job_id, event.seq, len(event.rows)):
                return await batches.stored(connection, self.name, event.job_id, event.seq)
            await connection.execute(sql.create_staging)
            await connection.copy_records_to_table(
                sql.staging, records=_records(dataset, event.job_id, rows), columns=sql.columns
            )
            inserted = int(await connection.fetchval(sql.upsert))
            outcome = batches.Outcome(len(event.rows), inserted, len(event.rows) - inserted)
            await batches.record(connection, self.name, event.job_id, event.seq, outcome)
        # Counted once committed, and only the first time: a repeat returned above.
        ROWS_UPSERTED.labels(dataset.name, "inserted").inc(outcome.inserted)
        ROWS_UPSERTED.labels(dataset.name, "duplicate").inc(outcome.duplicate)
        return outcome
