"""The ``data`` projection: upsert accepted rows into their dataset's typed table.

Which row is stored does not depend on which consumer ran first: of the rows of
one identity (natural key, else content hash), the content of the latest by
upload order (the FileReceived stream position) then line wins, and ``first_*``
name the earliest. Parallel consumers and replays therefore build the same table.

Rows are applied in the version of the dataset that is latest when the batch is
applied (the table has that version's columns); rows accepted under an older
version get the current defaults for fields they lack. Declaring a new version
waits for the batches being applied, and they for it (an advisory lock).
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro import codec
from ingestro.database import quote_ident
from ingestro.dataset_registry import DatasetRegistry, defaults_of, hold_declarations
from ingestro.dataset_tables import SYSTEM_COLUMN_SQL, identity
from ingestro.datasets import EXTRA_COLUMNS, SQL_TYPES, Dataset, FieldType
from ingestro.events import AcceptedRow, BatchApplied, RowsAccepted
from ingestro.metrics import ROWS_UPSERTED
from ingestro.names import DATA_GROUP
from ingestro.publisher import publish_all
from ingestro.runtime import Entry
from projections import batches

#: The bookkeeping columns a staged row fills (the times are the table's defaults), and their staged types.
_BOOKKEEPING = tuple(name for name, _ in SYSTEM_COLUMN_SQL if name not in ("created_at", "updated_at"))
_BOOKKEEPING_STAGED = tuple(sql.split()[0] for name, sql in SYSTEM_COLUMN_SQL if name in _BOOKKEEPING)
#: Field types staged as text and cast by PostgreSQL, which parses them faster than Python.
_CAST_FROM_TEXT = {FieldType.NUMBER, FieldType.DATE, FieldType.DATETIME, FieldType.UUID}
_NEWER = "(EXCLUDED.last_position, EXCLUDED.last_line) > (stored.last_position, stored.last_line)"
_OLDER = "(EXCLUDED.first_position, EXCLUDED.first_line) < (stored.first_position, stored.first_line)"


def _staged_type(kind: FieldType) -> str:
    return "text" if kind in _CAST_FROM_TEXT else SQL_TYPES[kind]


def _cast(dataset: Dataset, column: str) -> str:
    """The cast that makes the staged ``column`` (quoted) comparable with the stored one."""
    for field in dataset.fields:
        if quote_ident(field.name) == column and field.type in _CAST_FROM_TEXT:
            return f"::{SQL_TYPES[field.type]}"
    return ""


@attrs.frozen
class UpsertSql:
    table: str
    staging: str
    create_staging: str
    columns: tuple[str, ...]
    #: Upserts the staged rows; answers (batch, rows inserted, rows updated) per credited batch.
    upsert: str


@cache
def upsert_sql(dataset: Dataset) -> UpsertSql:
    """The statements that stage rows and upsert them, in identity order, into the dataset's table."""
    table = quote_ident(dataset.table)
    # Named by a digest: a table's name plus a version could pass PostgreSQL's 63-character limit.
    staging = "staging_" + hashlib.sha256(f"{dataset.table}/{dataset.version}".encode()).hexdigest()[:20]
    names = (*dataset.field_names, *_BOOKKEEPING)
    targets = ", ".join(map(quote_ident, names))
    sources = ", ".join(
        f"{quote_ident(f.name)}::{SQL_TYPES[f.type]}" if f.type in _CAST_FROM_TEXT else quote_ident(f.name)
        for f in dataset.fields
    ) + ", " + ", ".join(_BOOKKEEPING)
    ident = ", ".join(map(quote_ident, identity(dataset)))

    def joined(left: str, staged: str) -> str:
        """Rows of ``left`` and of the staging table ``staged`` with the same identity (staged as text or not)."""
        return " AND ".join(f"{left}.{c} = {staged}.{c}{_cast(dataset, c)}" for c in map(quote_ident, identity(dataset)))

    content = (*dataset.field_names, EXTRA_COLUMNS, "content_hash", "schema_version") if dataset.key else ()
    sets = [f"{quote_ident(c)} = CASE WHEN {_NEWER} THEN EXCLUDED.{quote_ident(c)} ELSE stored.{quote_ident(c)} END"
            for c in (*content, "last_job_id", "last_line", "last_position")]
    sets += [f"{c} = CASE WHEN {_OLDER} THEN EXCLUDED.{c} ELSE stored.{c} END"
             for c in ("first_job_id", "first_line", "first_position")]
    sets.append("updated_at = now()")
    if dataset.key:
        # What the stored rows were before this statement (its snapshot): a changed winner is an update.
        before = f"""before AS (
            SELECT {', '.join(f'stored.{quote_ident(k)}' for k in dataset.key)}, stored.content_hash,
                   stored.last_position, stored.last_line
              FROM {table} stored JOIN {quote_ident(staging)} s ON {joined("stored", "s")}
        ),"""
        updated = """count(*) FILTER (WHERE NOT u.inserted AND b.content_hash IS DISTINCT FROM s.content_hash
                                       AND (s.last_position, s.last_line) > (b.last_position, b.last_line))"""
        join_before = f"LEFT JOIN before b ON {joined('b', 's')}"
    else:
        before, updated, join_before = "", "0", ""
    upsert = f"""
        WITH {before} upserted AS (
            INSERT INTO {table} AS stored ({targets})
            SELECT {sources} FROM {quote_ident(staging)} ORDER BY {ident}
            ON CONFLICT ({ident}) DO UPDATE SET {', '.join(sets)}
             WHERE {_NEWER} OR {_OLDER}
            RETURNING {ident}, (xmax = 0) AS inserted
        )
        SELECT s.batch, count(*) FILTER (WHERE u.inserted), {updated}
          FROM upserted u JOIN {quote_ident(staging)} s ON {joined("u", "s")} {join_before} GROUP BY s.batch
    """
    staged = [f"{quote_ident(f.name)} {_staged_type(f.type)}" for f in dataset.fields]
    staged += [f"{name} {kind}" for name, kind in zip(_BOOKKEEPING, _BOOKKEEPING_STAGED)]
    staged.append("batch integer")
    create = f"CREATE TEMP TABLE IF NOT EXISTS {quote_ident(staging)} ({', '.join(staged)}) ON COMMIT DELETE ROWS"
    return UpsertSql(table, staging, create, (*names, "batch"), upsert)


#: Bits of a position number given to the stream id's sequence within its millisecond.
_SEQUENCE_BITS = 20


def position_number(position: str | None) -> int:
    """A stream id ``ms-seq`` as one bigint that orders like the id; None (no position) is 0.

    A bigint, not a numeric: asyncpg encodes a numeric about twenty times slower, per row. The
    sequence gets 20 bits: a million uploads within one millisecond, far past what one Redis takes;
    a larger sequence counts as that millisecond's last.
    """
    if position is None:
        return 0
    milliseconds, _, sequence = position.partition("-")
    return (int(milliseconds) << _SEQUENCE_BITS) | min(int(sequence or 0), (1 << _SEQUENCE_BITS) - 1)


def _restaging(dataset: Dataset, version: int) -> Any:
    """For rows accepted under another version: each field's value as the current version stages it."""
    defaults = defaults_of(dataset)

    def convert(kind: FieldType, value: Any) -> Any:
        if value is None:
            return None
        staged = _staged_type(kind)
        if staged == "text":
            return value if isinstance(value, str) else str(value)
        if staged == "bigint":
            return int(value)
        if staged == "boolean":
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes", "t", "y", "on")
        return value

    fields = [(f.name, f.type) for f in dataset.fields]

    def restage(values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(convert(kind, values[name]) if name in values else defaults.get(name) for name, kind in fields)

    return restage


def staged_records(dataset: Dataset, batches_: list[RowsAccepted]) -> list[tuple[Any, ...]]:
    """One record per identity among the rows of ``batches_``, tagged with the index of the batch it counts for.

    The record carries the content of the latest row of its identity (upload position, then line)
    and the job and line of the earliest. A row repeated within the batches counts for the batch of
    its first occurrence (content hash identity) or of the winning row (natural key).
    """
    names = dataset.field_names
    key = dataset.key
    single_key = key[0] if len(key) == 1 else None
    positions = [position_number(batch.position) for batch in batches_]
    first_seen: dict[Any, tuple[AcceptedRow, int]] = {}
    repeated: dict[Any, list[tuple[AcceptedRow, int]]] = {}  # rare: identity -> every occurrence
    for index, batch in enumerate(batches_):
        for row in batch.rows:
            if single_key is not None:
                ident: Any = row.values.get(single_key)
            elif key:
                ident = tuple(map(row.values.get, key))
            else:
                ident = row.content_hash
            if ident in first_seen:
                repeated.setdefault(ident, [first_seen[ident]]).append((row, index))
            else:
                first_seen[ident] = (row, index)
    records: list[tuple[Any, ...]] = []
    restage: dict[int, Any] = {}
    for ident, (first, first_index) in first_seen.items():
        last, last_index, credited = first, first_index, first_index
        occurrences = repeated.get(ident)
        if occurrences is not None:
            (first, first_index) = min(occurrences, key=lambda o: (positions[o[1]], o[0].line))
            (last, last_index) = max(occurrences, key=lambda o: (positions[o[1]], o[0].line))
            if key:
                credited = last_index
        batch = batches_[last_index]
        values = last.values
        if batch.schema_version == dataset.version:
            fields = tuple(map(values.get, names))
        else:
            if batch.schema_version not in restage:
                restage[batch.schema_version] = _restaging(dataset, batch.schema_version)
            fields = restage[batch.schema_version](values)
        records.append(
            (
                *fields,
                values.get(EXTRA_COLUMNS),
                last.content_hash,
                batch.schema_version,
                batches_[first_index].job_id,
                first.line,
                positions[first_index],
                batch.job_id,
                last.line,
                positions[last_index],
                credited,
            )
        )
    return records


@attrs.define
class DataProjection:
    """Applies RowsAccepted batches; announces each applied batch as BatchApplied."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    name: str = DATA_GROUP
    registry: DatasetRegistry = attrs.field(
        default=attrs.Factory(lambda self: DatasetRegistry(self.pool), takes_self=True)
    )

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
                BatchApplied(
                    event.job_id, self.name, event.seq, outcome.rows, outcome.inserted, outcome.duplicate, outcome.updated
                )
                for event, outcome in zip(events, outcomes)
            ],
        )

    async def apply(self, event: RowsAccepted) -> batches.Outcome:
        """Apply one batch once; on a repeat, return the outcome stored the first time."""
        [outcome] = await self.apply_all([event])
        return outcome

    async def apply_all(self, events: list[RowsAccepted]) -> list[batches.Outcome]:
        """Apply each batch once, all in one transaction; a repeat gets the outcome stored the first time."""
        async with self.pool.acquire() as connection, connection.transaction():
            outcomes: dict[int, batches.Outcome] = {}
            fresh: dict[str, list[int]] = {}
            for index, event in enumerate(events):
                if await batches.claim(connection, self.name, event.job_id, event.seq, len(event.rows)):
                    fresh.setdefault(event.dataset, []).append(index)
                else:
                    outcomes[index] = await batches.stored(connection, self.name, event.job_id, event.seq)
            first_time: list[tuple[str, batches.Outcome]] = []
            if fresh:
                await hold_declarations(connection)
            for dataset_name, indices in fresh.items():
                dataset = await self.registry.latest(dataset_name, connection)
                sql = upsert_sql(dataset)
                applied = [events[index] for index in indices]
                await connection.execute(sql.create_staging)
                await connection.copy_records_to_table(
                    sql.staging, records=staged_records(dataset, applied), columns=sql.columns
                )
                counts = {batch: (int(inserted), int(updated)) for batch, inserted, updated in await connection.fetch(sql.upsert)}
                for position, index in enumerate(indices):
                    event = events[index]
                    inserted, updated = counts.get(position, (0, 0))
                    outcome = batches.Outcome(len(event.rows), inserted, len(event.rows) - inserted - updated, updated)
                    await batches.record(connection, self.name, event.job_id, event.seq, outcome)
                    outcomes[index] = outcome
                    first_time.append((dataset.name, outcome))
        # Counted once committed, and only the first time: repeats were answered from storage.
        for dataset_name, outcome in first_time:
            ROWS_UPSERTED.labels(dataset_name, "inserted").inc(outcome.inserted)
            ROWS_UPSERTED.labels(dataset_name, "updated").inc(outcome.updated)
            ROWS_UPSERTED.labels(dataset_name, "duplicate").inc(outcome.duplicate)
        return [outcomes[index] for index in range(len(events))]
