"""The data projection's optimistic write path: COPY the identities a table lacks straight into it.

Most batches of a real load are new rows, and for them ``INSERT … ON CONFLICT`` pays its speculative
insertion on every row. So the projection (``DataProjection(optimistic=True)``; off by default, see
there why) first looks the group's identities up, COPYs the records whose identity is absent straight
into the dataset table, and upserts only the others.

The lookup sees the table as it was when it ran: a concurrent writer may insert one of the identities
before this transaction commits. The COPY then waits for that writer and fails with a unique violation
(or, when two writers wait on each other, a deadlock); it runs in a savepoint, so the projection rolls
back to it, looks the identities up again (the other writer has committed by then) and COPYs again;
after ``ATTEMPTS`` it upserts every record instead. Counts, upload order and exactly-once are therefore
those of the upsert.

The lookup is planned with sequential scans, hash and merge joins off, for that statement only: after a
table is truncated and refilled, its statistics can make a sequential scan look cheapest, and a scan of
the whole table per group costs hundreds of µs per row. A nested loop over the table's unique index
cannot degrade that way.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from functools import cache
from operator import itemgetter
from typing import Any

import asyncpg
import attrs

from ingestro.datasets import EXTRA_COLUMNS, SQL_TYPES, Dataset, FieldType
from ingestro.datasets.tables import identity, qualified_table, quote_ident

#: Field types staged as text (PostgreSQL casts them in the upsert, faster than Python parses them), and
#: how a COPY straight into the table, which asyncpg sends binary, parses them instead.
TEXT_PARSERS: dict[FieldType, Callable[[str], Any]] = {
    FieldType.NUMBER: Decimal,
    FieldType.DATE: datetime.date.fromisoformat,
    FieldType.DATETIME: datetime.datetime.fromisoformat,
    FieldType.UUID: uuid.UUID,
}
#: The planner settings of the lookup, set for it alone (SET LOCAL, then back to the session's values).
_INDEX_PLAN_ONLY = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")
PLAN_FOR_LOOKUP = "; ".join(f"SET LOCAL {name} = off" for name in _INDEX_PLAN_ONLY)
PLAN_AFTER_LOOKUP = "; ".join(f"SET LOCAL {name} TO DEFAULT" for name in _INDEX_PLAN_ONLY)
#: Errors of a COPY that met a concurrent writer's row: the savepoint is rolled back, the identities
#: looked up again and the COPY tried again; after ``ATTEMPTS`` COPYs every record is upserted.
_RACED = (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError)
ATTEMPTS = 3
#: The bookkeeping columns a COPY fills after the fields, in ``_table_rows``'s order.
_BOOKKEEPING = (
    EXTRA_COLUMNS,
    "content_hash",
    "schema_version",
    "first_job_id",
    "first_line",
    "first_position",
    "last_job_id",
    "last_line",
    "last_position",
)


def staged_type(kind: FieldType) -> str:
    """The type a field of ``kind`` is staged (and looked up) as."""
    return "text" if kind in TEXT_PARSERS else SQL_TYPES[kind]


@attrs.frozen
class FreshRowsSql:
    #: Given one array per identity column (as staged), answers the 1-based places of the stored ones.
    lookup: str
    #: Where each identity column sits in a staged record.
    identity_at: tuple[int, ...]
    #: The table and its schema, unquoted, as COPY takes them.
    table: str
    schema: str
    columns: tuple[str, ...]
    #: Per field, the parser of its staged text, or None when it is staged as the table stores it.
    parsers: tuple[Callable[[str], Any] | None, ...]


@cache
def fresh_rows_sql(dataset: Dataset, schema: str) -> FreshRowsSql:
    """The identity lookup and the COPY layout for ``dataset``'s table in ``schema``.

    A staged record is the dataset's fields, then extra columns, content hash, first batch, first line,
    last batch, last line and credited batch (``projections.data.staged_records``).
    """
    kinds = {f.name: f.type for f in dataset.fields}
    names = identity(dataset)
    at = tuple(dataset.field_names.index(name) if name in kinds else len(kinds) + 1 for name in names)
    arrays = ", ".join(f"${n}::{staged_type(kinds.get(name, FieldType.STRING))}[]" for n, name in enumerate(names, 1))
    aliases = [f"c{n}" for n in range(len(names))]
    joined = " AND ".join(
        f"t.{quote_ident(name)} = k.{alias}"
        + (f"::{SQL_TYPES[kinds[name]]}" if kinds.get(name) in TEXT_PARSERS else "")
        for name, alias in zip(names, aliases, strict=True)
    )
    lookup = f"""
        SELECT k.place FROM unnest({arrays}) WITH ORDINALITY AS k({", ".join(aliases)}, place)
          JOIN {qualified_table(dataset.table, schema)} t ON {joined}
    """
    parsers = tuple(TEXT_PARSERS.get(f.type) for f in dataset.fields)
    return FreshRowsSql(lookup, at, dataset.table, schema, (*dataset.field_names, *_BOOKKEEPING), parsers)


async def stored_places(
    connection: asyncpg.Connection, sql: FreshRowsSql, records: Sequence[tuple[Any, ...]]
) -> set[int]:
    """The 0-based places in ``records`` of the identities the table already holds."""
    arrays = [[record[at] for record in records] for at in sql.identity_at]
    # No try/finally: a failed lookup aborts the transaction, and the SET LOCAL with it.
    await connection.execute(PLAN_FOR_LOOKUP)
    stored = {place - 1 for (place,) in await connection.fetch(sql.lookup, *arrays)}
    await connection.execute(PLAN_AFTER_LOOKUP)
    return stored


def _table_rows(
    sql: FreshRowsSql,
    records: Sequence[tuple[Any, ...]],
    job_ids: Sequence[str],
    positions: Sequence[int],
    versions: Sequence[int],
) -> list[tuple[Any, ...]]:
    """``records`` as rows of the table: the fields as stored, then ``_BOOKKEEPING``."""
    # Column by column, so that every loop runs in C (zip, map): a loop in Python per row cost more
    # than the speculative insertion this path saves.
    width = len(sql.parsers)
    columns: list[Any] = list(zip(*records, strict=True))
    for at, parse in enumerate(sql.parsers):
        if parse is not None:
            columns[at] = [None if value is None else parse(value) for value in columns[at]]
    extra, content_hash, first, first_line, last, last_line, _ = columns[width:]
    # Job ids stay text: asyncpg parses a uuid's text in C, faster than it reads a uuid.UUID's bytes.
    ids = job_ids
    return list(
        zip(
            *columns[:width],
            extra,
            content_hash,
            map(versions.__getitem__, last),
            map(ids.__getitem__, first),
            first_line,
            map(positions.__getitem__, first),
            map(ids.__getitem__, last),
            last_line,
            map(positions.__getitem__, last),
            strict=True,
        )
    )


async def copy_fresh(
    connection: asyncpg.Connection,
    sql: FreshRowsSql,
    records: list[tuple[Any, ...]],
    job_ids: Sequence[str],
    positions: Sequence[int],
    versions: Sequence[int],
) -> tuple[Counter[int], list[tuple[Any, ...]]]:
    """COPY the records whose identity the table lacks into it; return the rows inserted per credited batch
    and the records left to upsert (every record when the COPY kept meeting concurrent writers' rows).

    Must run in a transaction: each COPY is a savepoint of it.
    """
    if not records:
        return Counter(), []
    for _ in range(ATTEMPTS):
        stored = await stored_places(connection, sql, records)
        fresh = [record for place, record in enumerate(records) if place not in stored]
        if not fresh:
            return Counter(), records
        # In the upsert's order (the collation is C): two writers of the same new identities take their index
        # entries in one order, so they wait for each other instead of deadlocking. A null in a key column
        # leaves them unordered; a deadlock then counts as a race.
        with contextlib.suppress(TypeError):
            fresh.sort(key=itemgetter(*sql.identity_at))
        try:
            rows = _table_rows(sql, fresh, job_ids, positions, versions)
        except (ValueError, InvalidOperation):
            return Counter(), records  # a staged text PostgreSQL reads and Python does not: let the upsert cast it
        try:
            async with connection.transaction():
                await connection.copy_records_to_table(
                    sql.table, schema_name=sql.schema, records=rows, columns=sql.columns
                )
        except _RACED:
            # The COPY waited for the other writer to commit, so a second lookup sees its rows.
            continue
        left = [record for place, record in enumerate(records) if place in stored]
        return Counter(record[-1] for record in fresh), left
    return Counter(), records
