"""Exactly-once bookkeeping shared by the projections that apply row batches.

A projection claims (projection, job, seq) in ``applied_batches`` in the same
transaction as its writes. If the claim finds the batch already applied, the
projection writes nothing and only announces the stored outcome again.
"""

from __future__ import annotations

import asyncpg
import attrs


@attrs.frozen
class Outcome:
    rows: int
    inserted: int
    duplicate: int
    updated: int = 0


async def claim(connection: asyncpg.Connection, projection: str, job_id: str, seq: int, rows: int) -> bool:
    """Claim a batch inside the caller's transaction; False if it was applied before.

    A concurrent claimer of the same batch waits here until the first commits or aborts.
    """
    claimed = await connection.fetchval(
        "INSERT INTO applied_batches (projection, job_id, seq, rows) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING true",
        projection,
        job_id,
        seq,
        rows,
    )
    return bool(claimed)


async def record(connection: asyncpg.Connection, projection: str, job_id: str, seq: int, outcome: Outcome) -> None:
    await connection.execute(
        "UPDATE applied_batches SET inserted = $4, duplicate = $5, updated = $6"
        " WHERE projection = $1 AND job_id = $2 AND seq = $3",
        projection,
        job_id,
        seq,
        outcome.inserted,
        outcome.duplicate,
        outcome.updated,
    )


async def stored(connection: asyncpg.Connection, projection: str, job_id: str, seq: int) -> Outcome:
    row = await connection.fetchrow(
        "SELECT rows, inserted, duplicate, updated FROM applied_batches WHERE projection = $1 AND job_id = $2 AND seq = $3",
        projection,
        job_id,
        seq,
    )
    return Outcome(row["rows"], row["inserted"], row["duplicate"], row["updated"])
