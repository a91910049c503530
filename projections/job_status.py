"""Which jobs a ``jobs`` projection transaction moved to another status, told after its commit.

The ``jobs`` projection is the only one that knows a job finished. Each of its transactions
reads the status of the jobs it touches first, and again (with the counts) as its last
statement; a job whose status differs is announced as JobStatusChanged once the transaction
committed (``projections.projection.announce``), never before: a follower must never see a status that is then rolled
back. A concurrent applier may have committed a change between the first read and its own
lock, so a change can be told twice (harmless: followers keep the last status); statuses only
move forward (pending, processing, stalled, then completed or failed), so none goes untold.
If Redis fails between the commit and the announcement, that announcement is lost: followers
read the job's row when they connect, and ``ingestro upload`` then asks for the job itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

import asyncpg

from ingestro.domain.events import JobStatusChanged

_STATUSES = "SELECT job_id::text, status FROM jobs WHERE job_id = ANY($1::uuid[])"
_NOW = """
    SELECT job_id::text, status, rows_total, rows_accepted, rows_rejected, rows_inserted, rows_duplicate, error,
           rows_updated
      FROM jobs WHERE job_id = ANY($1::uuid[])
"""

Statuses = dict[str, str | None]


async def statuses(connection: asyncpg.Connection, job_ids: Collection[str]) -> Statuses:
    """The jobs' statuses now (None: no row yet), by canonical job id."""
    canonical = [str(uuid.UUID(job_id)) for job_id in job_ids]
    found = {row["job_id"]: row["status"] for row in await connection.fetch(_STATUSES, canonical)}
    return {job_id: found.get(job_id) for job_id in canonical}


async def changes_since(connection: asyncpg.Connection, before: Statuses) -> list[JobStatusChanged]:
    """The jobs of ``before`` whose status is another now, with their counts (run it last in the transaction)."""
    if not before:
        return []
    return [
        JobStatusChanged(
            job_id=row["job_id"],
            status=row["status"],
            previous=before[row["job_id"]],
            rows_total=row["rows_total"],
            rows_accepted=row["rows_accepted"],
            rows_rejected=row["rows_rejected"],
            rows_inserted=row["rows_inserted"],
            rows_duplicate=row["rows_duplicate"],
            error=row["error"],
            rows_updated=row["rows_updated"],
        )
        for row in await connection.fetch(_NOW, list(before))
        if row["status"] != before[row["job_id"]] and row["status"] is not None
    ]
