"""The ``data`` projection: upsert accepted rows into their dataset's typed table.

Which row is stored does not depend on which consumer ran first: of the rows of
one identity (natural key, else content hash), the content of the latest by
upload order (the FileReceived stream position) then line wins, and ``first_*``
name the earliest. Parallel consumers and replays therefore build the same table.

Rows are applied in the version of the dataset that is latest when the batch is
applied (the table has that version's columns); rows accepted under an older
version get the current defaults for fields they lack. Declaring a new version
waits for the batches being applied, and they for it (an advisory lock).

Writers of a keyed dataset's table take turns (an advisory lock per table, held to
commit): a batch's rows count as updated when they replace the content its statement
saw stored, and a concurrent writer's row, committed after that statement began, would
be replaced unseen and counted as a duplicate. Tables keyed by content hash have no
updates to count, so their writers run side by side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from functools import cache
from operator import itemgetter
from typing import Any, ClassVar

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro.datasets import EXTRA_COLUMNS, SQL_TYPES, Dataset, FieldType
from ingestro.datasets.registry import DatasetRegistry, defaults_of, hold_declarations
from ingestro.datasets.tables import DATA_SCHEMA, SYSTEM_COLUMN_SQL, identity, qualified_table, quote_ident
from ingestro.domain import codec
from ingestro.domain.events import AcceptedRow, BatchApplied, Event, RowsAccepted
from ingestro.metrics import ROWS_UPSERTED
from ingestro.streams.names import ACCEPTED_STREAM, DATA_GROUP
from ingestro.streams.runtime import Entry
from projections import batches
from projections.projection import announce

#: The bookkeeping columns an upserted row fills (the times are the table's defaults), and where each comes
#: from: the staged row ``s``, or the batch that gave the identity's earliest (``f``) or latest (``l``) row.
#: A batch's job, position and schema version are sent once per batch, not once per row: encoding them
#: was a third of a staged row's COPY cost.
_BOOKKEEPING_SOURCES = {
    "extra_columns": "s.extra_columns",
    "content_hash": "s.content_hash",
    "schema_version": "l.schema_version",
    "first_job_id": "f.job_id",
    "first_line": "s.first_line",
    "first_position": "f.position",
    "last_job_id": "l.job_id",
    "last_line": "s.last_line",
    "last_position": "l.position",
}
_BOOKKEEPING = tuple(name for name, _ in SYSTEM_COLUMN_SQL if name not in ("created_at", "updated_at"))
assert set(_BOOKKEEPING) == set(_BOOKKEEPING_SOURCES), "every bookkeeping column needs a source"
#: What a staged row carries after the fields (``staged_records``): batches are indexes into the group.
_STAGED_TAIL = (
    ("extra_columns", "jsonb"),
    ("content_hash", "text"),
    ("first_batch", "integer"),
    ("first_line", "bigint"),
    ("last_batch", "integer"),
    ("last_line", "bigint"),
    ("batch", "integer"),  # the batch the identity counts for
)
#: The group's batches, by index: the upsert's parameters $1 to $4.
_BATCHES = """batch_attributes AS (
            SELECT * FROM unnest($1::integer[], $2::uuid[], $3::bigint[], $4::integer[])
                          AS b(batch, job_id, position, schema_version)
        )"""
#: Field types staged as text and cast by PostgreSQL, which parses them faster than Python.
_CAST_FROM_TEXT = frozenset({FieldType.NUMBER, FieldType.DATE, FieldType.DATETIME, FieldType.UUID})
#: The advisory lock class of a keyed table's writers (the object is the hash of the table's qualified name).
_KEYED_WRITERS_LOCK = 0x1A6E59


def staged_type(kind: FieldType) -> str:
    """The type a field of ``kind`` is staged as."""
    return "text" if kind in _CAST_FROM_TEXT else SQL_TYPES[kind]


_NEWER = "(EXCLUDED.last_position, EXCLUDED.last_line) > (stored.last_position, stored.last_line)"
_OLDER = "(EXCLUDED.first_position, EXCLUDED.first_line) < (stored.first_position, stored.first_line)"


def _cast(dataset: Dataset, column: str) -> str:
    """The cast that makes the staged ``column`` (quoted) comparable with the stored one."""
    for field in dataset.fields:
        if quote_ident(field.name) == column and field.type in _CAST_FROM_TEXT:
            return f"::{SQL_TYPES[field.type]}"
    return ""


@attrs.frozen
class UpsertSql:
    staging: str
    create_staging: str
    columns: tuple[str, ...]
    #: Upserts the staged rows, given the batches' (index, job id, position, schema version) as four
    #: arrays; answers (batch, rows inserted, rows updated) per credited batch.
    upsert: str


@cache
def upsert_sql(dataset: Dataset, schema: str = DATA_SCHEMA) -> UpsertSql:
    """The statements that stage rows and upsert them, in identity order, into the dataset's table in ``schema``."""
    table = qualified_table(dataset.table, schema)
    staged = [(quote_ident(f.name), staged_type(f.type)) for f in dataset.fields] + list(_STAGED_TAIL)
    columns = ", ".join(f"{c} {t}" for c, t in staged)
    # Named by a digest: a table's name plus a version could pass PostgreSQL's 63-character limit. The
    # columns are in it too, so a session never reuses a staging table of another shape.
    digest = hashlib.sha256(f"{dataset.table}/{dataset.version}/{columns}".encode()).hexdigest()[:20]
    staging_name = "staging_" + digest
    staging = quote_ident(staging_name)
    targets = ", ".join(map(quote_ident, (*dataset.field_names, *_BOOKKEEPING)))
    sources = (
        ", ".join(
            f"s.{quote_ident(f.name)}::{SQL_TYPES[f.type]}" if f.type in _CAST_FROM_TEXT else f"s.{quote_ident(f.name)}"
            for f in dataset.fields
        )
        + ", "
        + ", ".join(_BOOKKEEPING_SOURCES[name] for name in _BOOKKEEPING)
    )
    ident = ", ".join(f"s.{quote_ident(c)}" for c in identity(dataset))

    def joined(left: str, staged: str) -> str:
        """Rows of ``left`` and of the staging table ``staged`` with the same identity (staged as text or not)."""
        return " AND ".join(
            f"{left}.{c} = {staged}.{c}{_cast(dataset, c)}" for c in map(quote_ident, identity(dataset))
        )

    content = (*dataset.field_names, EXTRA_COLUMNS, "content_hash", "schema_version") if dataset.key else ()
    sets = [
        f"{quote_ident(c)} = CASE WHEN {_NEWER} THEN EXCLUDED.{quote_ident(c)} ELSE stored.{quote_ident(c)} END"
        for c in (*content, "last_job_id", "last_line", "last_position")
    ]
    sets += [
        f"{c} = CASE WHEN {_OLDER} THEN EXCLUDED.{c} ELSE stored.{c} END"
        for c in ("first_job_id", "first_line", "first_position")
    ]
    sets.append("updated_at = now()")
    if dataset.key:
        # What the stored rows were before this statement (its snapshot): a changed winner is an update.
        before = f"""before AS (
            SELECT {", ".join(f"stored.{quote_ident(k)}" for k in dataset.key)}, stored.content_hash,
                   stored.last_position, stored.last_line
              FROM {table} stored JOIN {staging} s ON {joined("stored", "s")}
        ),"""
        updated = """count(*) FILTER (WHERE NOT u.inserted AND b.content_hash IS DISTINCT FROM s.content_hash
                                       AND (l.position, s.last_line) > (b.last_position, b.last_line))"""
        join_before = f"JOIN batch_attributes l ON l.batch = s.last_batch LEFT JOIN before b ON {joined('b', 's')}"
    else:
        before, updated, join_before = "", "0", ""
    upsert = f"""
        WITH {_BATCHES}, {before} upserted AS (
            INSERT INTO {table} AS stored ({targets})
            SELECT {sources}
              FROM {staging} s
              JOIN batch_attributes f ON f.batch = s.first_batch
              JOIN batch_attributes l ON l.batch = s.last_batch
             ORDER BY {ident}
            ON CONFLICT ({", ".join(map(quote_ident, identity(dataset)))}) DO UPDATE SET {", ".join(sets)}
             WHERE {_NEWER} OR {_OLDER}
            RETURNING {", ".join(map(quote_ident, identity(dataset)))}, (xmax = 0) AS inserted
        )
        SELECT s.batch, count(*) FILTER (WHERE u.inserted), {updated}
          FROM upserted u JOIN {staging} s ON {joined("u", "s")} {join_before} GROUP BY s.batch
    """
    create = f"CREATE TEMP TABLE IF NOT EXISTS {staging} ({columns}) ON COMMIT DELETE ROWS"
    return UpsertSql(staging_name, create, (*dataset.field_names, *(name for name, _ in _STAGED_TAIL)), upsert)


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


@cache
def _restaging(dataset: Dataset) -> Any:
    """For rows accepted under another version: each field's value as ``dataset`` (the latest) stages it."""
    defaults = defaults_of(dataset)

    def convert(kind: FieldType, value: Any) -> Any:
        if value is None:
            return None
        staged = staged_type(kind)
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


def _stored_rows(dataset: Dataset, rows: Sequence[AcceptedRow]) -> Iterator[tuple[int, str, tuple[Any, ...], Any]]:
    """Each row's (line, content hash, field values in ``dataset``'s order, extra columns), for a batch accepted
    under ``dataset``'s version. The values of rows as decoded (``PositionalRows``) are picked by place: no dict
    per row."""
    names = dataset.field_names
    if isinstance(rows, codec.PositionalRows) and set(names) <= set(rows.names):
        places = [rows.names.index(name) for name in names]
        pick: Any = itemgetter(*places) if len(places) > 1 else (lambda values: tuple(values[p] for p in places))
        extra_at = rows.names.index(EXTRA_COLUMNS) if EXTRA_COLUMNS in rows.names else None
        for line, content_hash, values in rows.stored:
            if type(values) is list:
                yield line, content_hash, pick(values), None if extra_at is None else values[extra_at]
            else:  # a row with other fields than the batch's first
                yield line, content_hash, tuple(map(values.get, names)), values.get(EXTRA_COLUMNS)
        return
    # Faster than a get per field; a row lacking a field (an older entry) falls back to get's None.
    fields_of: Any = itemgetter(*names) if len(names) > 1 else lambda values: tuple(values[n] for n in names)
    for row in rows:
        values = row.values
        try:
            fields = fields_of(values)
        except KeyError:
            fields = tuple(map(values.get, names))
        yield row.line, row.content_hash, fields, values.get(EXTRA_COLUMNS)


def staged_records(dataset: Dataset, batches_: list[RowsAccepted]) -> list[tuple[Any, ...]]:
    """One record per identity among the rows of ``batches_``: its fields, then ``_STAGED_TAIL``.

    The record carries the content of the latest row of its identity (upload position, then line)
    and the batch and line of the earliest and of the latest. A row repeated within the batches
    counts for the batch of its first occurrence (content hash identity) or of the winning row
    (natural key). Batches are indexes into ``batches_``.
    """
    names = dataset.field_names
    key = dataset.key
    key_at = [names.index(name) for name in key]
    single_key = key_at[0] if len(key_at) == 1 else None
    records: list[tuple[Any, ...]] = []
    append = records.append
    #: identity -> index of its record
    slot_of: dict[Any, int] = {}
    #: rare: record index -> every occurrence of its identity, as (batch index, row index)
    repeated: dict[int, list[tuple[int, int]]] = {}
    made_from: list[tuple[int, int]] = []  # the (batch index, row index) each record was made from
    for index, batch in enumerate(batches_):
        if batch.schema_version == dataset.version:
            rows = _stored_rows(dataset, batch.rows)
        else:
            restage = _restaging(dataset)
            rows = (
                (row.line, row.content_hash, restage(row.values), row.values.get(EXTRA_COLUMNS)) for row in batch.rows
            )
        # The hot loop: most rows are an identity's only occurrence, staged as they come.
        for at, (line, content_hash, fields, extra) in enumerate(rows):
            if single_key is not None:
                ident: Any = fields[single_key]
            elif key_at:
                ident = tuple(fields[k] for k in key_at)
            else:
                ident = content_hash
            count = len(records)
            slot = slot_of.setdefault(ident, count)
            if slot != count:
                repeated.setdefault(slot, [made_from[slot]]).append((index, at))
                continue
            append((*fields, extra, content_hash, index, line, index, line, index))
            made_from.append((index, at))
    if repeated:
        positions = [position_number(batch.position) for batch in batches_]
        for slot, places in repeated.items():
            occurrences = [(batches_[b].rows[r], b) for b, r in places]
            first, first_index = min(occurrences, key=lambda o: (positions[o[1]], o[0].line))
            last, last_index = max(occurrences, key=lambda o: (positions[o[1]], o[0].line))
            credited = last_index if key else occurrences[0][1]
            version = batches_[last_index].schema_version
            values = last.values
            records[slot] = (
                *(map(values.get, names) if version == dataset.version else _restaging(dataset)(values)),
                values.get(EXTRA_COLUMNS),
                last.content_hash,
                first_index,
                first.line,
                last_index,
                last.line,
                credited,
            )
    return records


@attrs.define
class DataProjection:
    """Applies RowsAccepted batches; announces each applied batch as BatchApplied."""

    name: ClassVar[str] = DATA_GROUP
    streams: ClassVar[tuple[str, ...]] = (ACCEPTED_STREAM,)
    announces: ClassVar[tuple[type[Event], ...]] = (BatchApplied,)
    shared_tables: ClassVar[tuple[str, ...]] = batches.SHARED_TABLES
    facts: ClassVar[str] = batches.FACTS

    pool: asyncpg.Pool
    redis: aioredis.Redis | None = None
    #: Where the dataset tables are: a replay builds them in a schema of its own (``in_shadow``).
    schema: str = DATA_SCHEMA
    registry: DatasetRegistry = attrs.field(
        default=attrs.Factory(lambda self: DatasetRegistry(self.pool), takes_self=True)
    )

    @classmethod
    def in_shadow(cls, pool: asyncpg.Pool, schema: str) -> DataProjection:
        """See ``Projection.in_shadow``: the dataset tables are named with ``schema``."""
        return cls(pool, None, schema=schema)

    async def __call__(self, entry: Entry) -> None:
        await self.handle_group([entry])

    async def handle_group(self, entries: list[Entry]) -> None:
        """Apply the entries' batches in one transaction, then announce each as BatchApplied."""
        await announce(self.redis, await self.apply_entries(entries))

    async def apply_entries(self, entries: list[Entry]) -> list[BatchApplied]:
        """Apply the RowsAccepted among ``entries`` (other events are ignored) in one transaction; return their
        BatchApplied (the stored outcome, for a repeat), announcing nothing."""
        events = [
            event for event in map(codec.decode, (entry.fields for entry in entries)) if isinstance(event, RowsAccepted)
        ]
        outcomes = await self.apply_all(events) if events else []
        return [
            BatchApplied(
                event.job_id, self.name, event.seq, outcome.rows, outcome.inserted, outcome.duplicate, outcome.updated
            )
            for event, outcome in zip(events, outcomes, strict=True)
        ]

    async def tables(self) -> tuple[str, ...]:
        """Every dataset's live table that exists (in ``DATA_SCHEMA``, whatever ``schema`` this one writes)."""
        tables = sorted({dataset.table for dataset in await self.registry.all_latest()})
        return tuple(
            [table for table in tables if await self.pool.fetchval("SELECT to_regclass($1)", qualified_table(table))]
        )

    async def restore_trimmed(self, stream: str, live: asyncpg.Connection) -> None:
        """Accepted rows live only in their events: nothing to restore."""

    async def lost(self, live: asyncpg.Connection, schema: str) -> dict[str, int]:
        return await batches.lost(live, self.name, schema)

    async def apply(self, event: RowsAccepted) -> batches.Outcome:
        """Apply one batch once; on a repeat, return the outcome stored the first time."""
        [outcome] = await self.apply_all([event])
        return outcome

    async def apply_all(self, events: list[RowsAccepted]) -> list[batches.Outcome]:
        """Apply each batch once, all in one transaction; a repeat gets the outcome stored the first time."""
        async with self.pool.acquire() as connection, connection.transaction():
            claimed = await batches.claim(connection, self.name, [(e.job_id, e.seq, len(e.rows)) for e in events])
            repeats = [index for index, fresh in enumerate(claimed) if not fresh]
            stored = await batches.stored(connection, self.name, [(events[i].job_id, events[i].seq) for i in repeats])
            outcomes: dict[int, batches.Outcome] = dict(zip(repeats, stored, strict=True))
            fresh_by_dataset: dict[str, list[int]] = {}
            for index, fresh in enumerate(claimed):
                if fresh:
                    fresh_by_dataset.setdefault(events[index].dataset, []).append(index)
            first_time: list[tuple[str, batches.Outcome]] = []
            if fresh_by_dataset:
                await hold_declarations(connection)
            for dataset_name, indices in sorted(fresh_by_dataset.items()):  # sorted: keyed tables lock in one order
                dataset = await self.registry.latest(dataset_name, connection)
                sql = upsert_sql(dataset, self.schema)
                applied = [events[index] for index in indices]
                job_ids = [event.job_id for event in applied]
                positions = [position_number(event.position) for event in applied]
                versions = [event.schema_version for event in applied]
                await connection.execute(sql.create_staging)
                await connection.copy_records_to_table(
                    sql.staging, records=staged_records(dataset, applied), columns=sql.columns
                )
                if dataset.key:
                    await connection.execute(
                        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                        _KEYED_WRITERS_LOCK,
                        qualified_table(dataset.table, self.schema),
                    )
                rows = await connection.fetch(sql.upsert, list(range(len(applied))), job_ids, positions, versions)
                counts = {batch: (int(inserted), int(updated)) for batch, inserted, updated in rows}
                for position, index in enumerate(indices):
                    event = events[index]
                    inserted, updated = counts.get(position, (0, 0))
                    outcomes[index] = batches.Outcome(
                        len(event.rows), inserted, len(event.rows) - inserted - updated, updated
                    )
                    first_time.append((dataset.name, outcomes[index]))
            await batches.record(
                connection,
                self.name,
                [((events[i].job_id, events[i].seq), outcomes[i]) for i, fresh in enumerate(claimed) if fresh],
            )
        # Counted once committed, and only the first time: repeats were answered from storage.
        for dataset_name, outcome in first_time:
            ROWS_UPSERTED.labels(dataset_name, "inserted").inc(outcome.inserted)
            ROWS_UPSERTED.labels(dataset_name, "updated").inc(outcome.updated)
            ROWS_UPSERTED.labels(dataset_name, "duplicate").inc(outcome.duplicate)
        return [outcomes[index] for index in range(len(events))]
