"""Uploaded-file retention: which stored files may go, deleting them, and the periodic policy.

A job's stored file is needed while the job is not finished (``pending``,
``processing``, ``stalled``: the parser may still read it, or read it again after a
redrive), and it is the only source left to rebuild the job's projections from once
retention trimmed its events from the streams (``ingestro reparse`` regenerates them
from the file). ``ingestro files delete`` refuses both; the second only until
``--force``.

``INGESTRO_FILE_RETENTION_DAYS`` (unset: keep every file) deletes the files of
finished jobs received longer ago, every ``INGESTRO_RETENTION_INTERVAL_S``, beside
stream retention in the ``jobs`` consumer. Setting it is the operator's consent to
the second case: with the default 7-day stream window, a job's events are gone
well before a file retention of days or weeks would delete its file, so a policy
that waited for retained events would never delete anything. Unfinished jobs'
files are never deleted.

Deletions are recorded in ``deleted_files`` (not in ``jobs``, which only the
``jobs`` projection writes), so reparse and ``ingestro files list`` can say why a
file is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro.domain.jobs import UNFINISHED, sql_literals
from ingestro.storage.interface import Storage
from ingestro.streams.connections import text
from ingestro.streams.maintenance import run_rounds
from ingestro.streams.retention import id_key

log = logging.getLogger(__name__)


_FILES = """
    SELECT j.job_id::text AS job_id, j.filename, j.status, j.received_at, j.bytes, j.storage_key, j.position,
           d.deleted_at, d.reason
      FROM jobs j LEFT JOIN deleted_files d USING (job_id)
     WHERE j.storage_key IS NOT NULL {where}
     ORDER BY j.received_at NULLS LAST, j.job_id
"""


@attrs.frozen
class StoredFile:
    """A job's uploaded file, as the ``jobs`` row records it, and whether it was deleted."""

    job_id: str
    filename: str
    status: str
    received_at: datetime | None
    bytes: int | None
    storage_key: str
    #: The stream id of the job's FileReceived (None: recorded before it was kept).
    position: str | None
    deleted_at: datetime | None
    deleted_reason: str | None

    @classmethod
    def from_row(cls, row: Any) -> StoredFile:
        return cls(
            row["job_id"],
            row["filename"] or "",
            row["status"],
            row["received_at"],
            row["bytes"],
            row["storage_key"],
            row["position"],
            row["deleted_at"],
            row["reason"],
        )


async def stored_files(pool: asyncpg.Pool, job_ids: list[str] | None = None) -> list[StoredFile]:
    """The files of ``job_ids`` (None: every job whose row records its file), oldest upload first."""
    if job_ids is None:
        rows = await pool.fetch(_FILES.format(where=""))
    else:
        rows = await pool.fetch(_FILES.format(where="AND j.job_id = ANY($1::uuid[])"), job_ids)
    return [StoredFile.from_row(row) for row in rows]


async def trimmed_through(redis: aioredis.Redis, streams: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Per stream of job events (``streams``: those retention trims, ``ingestro.streams.retention.trimmed_streams``;
    a job's file is the only source once any of them lost one), the lowest id from which every entry ever added
    is still there.

    Trimming deletes the oldest entries: in a stream that lost some, whatever is below its first
    entry may be gone (all of it when it is empty); an entry deleted alone (XDEL) counts too.
    """
    found = {}
    for stream in streams:
        info: dict[str, Any] = await redis.xinfo_stream(stream) if await redis.exists(stream) else {}
        kept_from = (0, 0)
        if info and int(info["entries-added"]) > int(info["length"]):
            if info.get("first-entry"):
                kept_from = id_key(text(info["first-entry"][0]))
            else:
                ms, seq = id_key(text(info["last-generated-id"]))
                kept_from = (ms, seq + 1)
        ms, seq = id_key(text(info.get("max-deleted-entry-id", b"0-0")))
        found[stream] = max(kept_from, (ms, seq + 1) if (ms, seq) != (0, 0) else (0, 0))
    return found


def events_retained(file: StoredFile, trimmed: dict[str, tuple[int, int]]) -> bool:
    """Whether every event of the job is still in the streams: none was deleted at or after its FileReceived.

    A job's events all come after its FileReceived (their ids are higher).
    """
    if file.position is None:
        return False  # recorded before positions were: cannot tell, so assume the worst
    return all(id_key(file.position) >= kept_from for kept_from in trimmed.values())


def why_kept(file: StoredFile, retained: bool, force: bool) -> str | None:
    """Why ``file`` may not be deleted now, or None when it may."""
    if file.deleted_at is not None:
        return f"the file of job {file.job_id} was already deleted ({file.deleted_reason})"
    if file.status in UNFINISHED:
        return f"job {file.job_id} is {file.status}: its file is still needed to finish it"
    if not retained and not force:
        return (
            f"the events of job {file.job_id} are no longer all in the streams (retention trimmed them), so its "
            "file is the only source left to reparse and replay it from; pass --force to delete it anyway"
        )
    return None


async def delete_file(pool: asyncpg.Pool, storage: Storage, file: StoredFile, reason: str) -> None:
    """Delete the stored file, then record it; deleting again is harmless."""
    await storage.delete(file.storage_key)
    await pool.execute(
        "INSERT INTO deleted_files (job_id, storage_key, reason) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        file.job_id,
        file.storage_key,
        reason,
    )


async def expire_files(pool: asyncpg.Pool, storage: Storage, days: float, now: datetime | None = None) -> int:
    """Delete the files of finished jobs received more than ``days`` ago; return how many went."""
    now = datetime.now(UTC) if now is None else now
    rows = await pool.fetch(
        _FILES.format(
            where=f"AND d.job_id IS NULL AND j.status NOT IN ({sql_literals(UNFINISHED)}) AND j.received_at < $1"
        ),
        now - timedelta(days=days),
    )
    for row in rows:
        await delete_file(pool, storage, StoredFile.from_row(row), f"file retention of {days:g} days")
    return len(rows)


async def run_file_retention(
    pool: asyncpg.Pool, storage: Storage, days: float, interval_s: float, stop: asyncio.Event
) -> None:
    """Expire files every ``interval_s`` until ``stop`` is set; a round that fails is logged and skipped."""

    async def expire() -> None:
        deleted = await expire_files(pool, storage, days)
        if deleted:
            log.info("deleted expired uploads", extra={"deleted": deleted})

    await run_rounds("file retention", expire, interval_s, stop)
