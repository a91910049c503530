"""Exactly-once bookkeeping shared by the projections that apply row batches.

A projection claims (projection, job, seq) in ``applied_batches`` in the same
transaction as its writes. If the claim finds the batch already applied, the
projection writes nothing and only announces the stored outcome again.

Each function takes every batch of a group at once: one statement per group, not per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import attrs

from ingestro.datasets.tables import quote_ident

#: A batch of a job: (job id, seq).
BatchId = tuple[str, int]

_CLAIM = """
    INSERT INTO applied_batches (projection, job_id, seq, rows)
    SELECT $1, job_id, seq, rows FROM unnest($2::uuid[], $3::integer[], $4::integer[]) AS b(job_id, seq, rows)
     ORDER BY job_id, seq
    ON CONFLICT DO NOTHING RETURNING job_id::text, seq
"""
_RECORD = """
    UPDATE applied_batches a SET inserted = b.inserted, duplicate = b.duplicate, updated = b.updated
      FROM unnest($2::uuid[], $3::integer[], $4::integer[], $5::integer[], $6::integer[])
           AS b(job_id, seq, inserted, duplicate, updated)
     WHERE a.projection = $1 AND a.job_id = b.job_id AND a.seq = b.seq
"""
_STORED = """
    SELECT a.job_id::text, a.seq, a.rows, a.inserted, a.duplicate, a.updated
      FROM applied_batches a JOIN unnest($2::uuid[], $3::integer[]) AS b(job_id, seq)
           ON a.job_id = b.job_id AND a.seq = b.seq
     WHERE a.projection = $1
"""


#: What ``Projection.facts`` says of a projection that keeps ``applied_batches``.
FACTS = "applied batches"
#: The table such a projection shares with the others, owning its rows (``Projection.shared_tables``).
SHARED_TABLES = ("applied_batches",)


@attrs.frozen
class Outcome:
    rows: int
    inserted: int
    duplicate: int
    updated: int = 0


def _canonical(job_id: str) -> str:
    """The job id as PostgreSQL writes a uuid back, so that ids from both sides compare."""
    return str(uuid.UUID(job_id))


async def claim(connection: asyncpg.Connection, projection: str, claims: Sequence[tuple[str, int, int]]) -> list[bool]:
    """Claim batches (job id, seq, rows) inside the caller's transaction; for each, False if it was applied before.

    A batch listed twice is claimed by its first listing only. A concurrent claimer of the same
    batch waits here until the first commits or aborts; batches are claimed in (job, seq) order,
    so two claimers of overlapping groups cannot deadlock.
    """
    rows = await connection.fetch(
        _CLAIM,
        projection,
        [job_id for job_id, _, _ in claims],
        [seq for _, seq, _ in claims],
        [count for _, _, count in claims],
    )
    fresh = {(job_id, seq) for job_id, seq in rows}
    claimed = []
    for job_id, seq, _ in claims:
        batch = (_canonical(job_id), seq)
        claimed.append(batch in fresh)
        fresh.discard(batch)
    return claimed


async def record(connection: asyncpg.Connection, projection: str, outcomes: Sequence[tuple[BatchId, Outcome]]) -> None:
    """Store the outcome of each claimed batch."""
    if not outcomes:
        return
    await connection.execute(
        _RECORD,
        projection,
        [job_id for (job_id, _), _ in outcomes],
        [seq for (_, seq), _ in outcomes],
        [outcome.inserted for _, outcome in outcomes],
        [outcome.duplicate for _, outcome in outcomes],
        [outcome.updated for _, outcome in outcomes],
    )


async def stored(connection: asyncpg.Connection, projection: str, batches: Sequence[BatchId]) -> list[Outcome]:
    """The stored outcome of each of ``batches`` (claimed before), in their order."""
    if not batches:
        return []
    rows = await connection.fetch(_STORED, projection, [job_id for job_id, _ in batches], [seq for _, seq in batches])
    found = {
        (job_id, seq): Outcome(count, inserted, duplicate, updated)
        for job_id, seq, count, inserted, duplicate, updated in rows
    }
    return [found[(_canonical(job_id), seq)] for job_id, seq in batches]


async def lost(live: asyncpg.Connection, projection: str, schema: str) -> dict[str, int]:
    """The batches ``projection`` applied in the live ``applied_batches`` but not in ``schema``'s, counted per job."""
    rows = await live.fetch(
        f"""
        SELECT l.job_id::text AS job_id, count(*) AS missing FROM public.applied_batches l
         WHERE l.projection = $1 AND NOT EXISTS (
               SELECT 1 FROM {quote_ident(schema)}.applied_batches s
                WHERE s.projection = l.projection AND s.job_id = l.job_id AND s.seq = l.seq)
         GROUP BY l.job_id ORDER BY l.job_id
        """,
        projection,
    )
    return {row["job_id"]: int(row["missing"]) for row in rows}
