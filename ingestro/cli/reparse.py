"""``ingestro reparse JOB_ID…|--all``: parse stored files again and re-emit their jobs' events, for people."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from ingestro.cli._parsers import Subcommands, add_command
from ingestro.config import Settings
from ingestro.database import create_pool
from ingestro.storage import storage_for
from ingestro.streams.connections import redis_client


def add_parser(commands: Subcommands) -> None:
    reparse_parser = add_command(
        commands,
        "reparse",
        "parse jobs' stored files again and re-emit their events (same job ids, same batches)",
        "Regenerates the events of jobs whose events retention trimmed, while their files are kept; the live "
        "projections change nothing, a replay can then rebuild from them. INGESTRO_BATCH_SIZE must be the one "
        "the files were parsed with (checked). With job ids, nothing is done when one cannot be reparsed.",
        command,
    )
    reparse_parser.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="the jobs")
    reparse_parser.add_argument("--all", action="store_true", help="every job whose file is stored")


def command(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.job_ids) == args.all:
        raise SystemExit("ingestro reparse: give job ids or --all")
    return asyncio.run(run(settings, args.job_ids, args.all))


async def run(settings: Settings, job_ids: list[str], every: bool, out: TextIO = sys.stdout) -> int:
    """Reparse the named jobs (all or none: any that cannot be is refused first), or with ``every``
    each job that can be (the others are named on stderr). Exit status 1 when one was refused."""
    # Imported here, not at the top: it loads every consumer and projection (see ingestro.cli.choices).
    from consumers.reparse import Reparser

    redis = redis_client(settings, socket_timeout=30)
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        reparser = Reparser(
            pool,
            redis,
            storage_for(settings),
            settings.batch_size,
            settings.limits,
            partitions=settings.partitions,
            range_bytes=settings.parse_range_bytes,
        )
        ready, problems = await reparser.plan(None if every else job_ids)
        for job_id, why in problems.items():
            print(f"ingestro reparse: job {job_id} cannot be reparsed: {why}", file=sys.stderr)
        if problems and not every:
            print("ingestro reparse: nothing was reparsed", file=sys.stderr)
            return 1
        for source in ready:
            done = await reparser.reparse(source)
            out.write(f"reparsed job {done.job_id} ({done.filename or 'unnamed'}, {done.bytes:,} bytes)\n")
        out.write(f"{len(ready)} job(s) reparsed; their events are in the streams again\n")
        return 1 if problems else 0
    finally:
        await pool.close()
        await redis.aclose()
