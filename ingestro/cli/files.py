"""``ingestro files list|delete JOB_ID [--force]``: uploaded files and their retention, for people."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from ingestro.cli._parsers import Subcommands, add_command, subcommands
from ingestro.config import Settings
from ingestro.database import create_pool
from ingestro.storage import storage_for
from ingestro.storage.retention import StoredFile, delete_file, events_retained, stored_files, trimmed_through, why_kept
from ingestro.streams.connections import redis_client
from ingestro.streams.retention import trimmed_streams


def add_parser(commands: Subcommands) -> None:
    group = add_command(
        commands,
        "files",
        "list uploaded files, or delete one no longer needed",
        "A file is needed while its job is not finished, and is the only source to replay its job from once its "
        "events were trimmed from the streams: deleting it is refused then (the latter unless --force). "
        "INGESTRO_FILE_RETENTION_DAYS deletes finished jobs' files after that many days.",
    )
    actions = subcommands(group)
    add_command(
        actions,
        "list",
        "one line per recorded file: job, status, received, bytes, whether its events and file are kept",
        run=_command,
    )
    delete = add_command(
        actions,
        "delete",
        "delete a job's file",
        "Delete a job's stored file; refused while the job is unfinished, or (without --force) when its events "
        "were trimmed from the streams. The deletion is recorded.",
        _command,
    )
    delete.add_argument("job_id", metavar="JOB_ID", help="the job whose file goes")
    delete.add_argument("--force", action="store_true", help="delete even when its events are no longer retained")


def _command(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run(settings, args.action, getattr(args, "job_id", None), getattr(args, "force", False)))


async def run(settings: Settings, action: str, job_id: str | None, force: bool, out: TextIO = sys.stdout) -> int:
    """``list`` every recorded file; ``delete`` one unless it is still needed (exit status 1, saying why)."""
    # Imported here, not at the top: it loads every consumer and projection (see ingestro.cli.choices).
    from ingestro.services.consumer_groups import group_stream_keys

    redis = redis_client(settings, socket_timeout=30)
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        trimmed = await trimmed_through(redis, trimmed_streams(group_stream_keys(settings.partitions)))
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
