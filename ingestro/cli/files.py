"""``ingestro files list|delete JOB_ID [--force]``: uploaded files and their retention, for people."""

from __future__ import annotations

import sys
from typing import TextIO

from ingestro.config import Settings
from ingestro.database import create_pool
from ingestro.services.consumer_groups import GROUP_STREAMS
from ingestro.storage import storage_for
from ingestro.storage.retention import StoredFile, delete_file, events_retained, stored_files, trimmed_through, why_kept
from ingestro.streams.connections import redis_client
from ingestro.streams.retention import trimmed_streams


async def run(settings: Settings, action: str, job_id: str | None, force: bool, out: TextIO = sys.stdout) -> int:
    """``list`` every recorded file; ``delete`` one unless it is still needed (exit status 1, saying why)."""
    redis = redis_client(settings.redis_url, socket_timeout=30)
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        trimmed = await trimmed_through(redis, trimmed_streams(GROUP_STREAMS))
        if action == "list":
            files = await stored_files(pool)
            for file in files:
                out.write(_line(file, events_retained(file, trimmed)) + "\n")
            out.write(f"{len(files)} file(s)\n")
            return 0
        found = await stored_files(pool, [job_id or ""])
        if not found:
            print(f"ingestro files: no job {job_id!r} with a recorded file", file=sys.stderr)
            return 1
        file = found[0]
        why = why_kept(file, events_retained(file, trimmed), force)
        if why is not None:
            print(f"ingestro files delete: refused: {why}", file=sys.stderr)
            return 1
        await delete_file(pool, storage_for(settings), file, "deleted with --force" if force else "deleted by hand")
        out.write(f"deleted the file of job {file.job_id} ({file.filename or 'unnamed'})\n")
        return 0
    finally:
        await pool.close()
        await redis.aclose()


def _line(file: StoredFile, retained: bool) -> str:
    received = f"{file.received_at:%Y-%m-%d %H:%M}" if file.received_at else "-"
    stored = f"deleted {file.deleted_at:%Y-%m-%d %H:%M} ({file.deleted_reason})" if file.deleted_at else "stored"
    return (
        f"{file.job_id}  {file.status:<10}  received={received}  bytes={file.bytes or 0:,}"
        f"  events={'retained' if retained else 'trimmed'}  file={stored}  {file.filename}"
    )
