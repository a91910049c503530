"""``ingestro dlq list|show ID|redrive ID|--all|purge ID|--all``: the dead-letter stream for people."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

import orjson
import redis.asyncio as aioredis
import redis.exceptions

from ingestro.cli._parsers import Subcommands, add_command, subcommands
from ingestro.config import Settings
from ingestro.streams import dlq
from ingestro.streams.connections import redis_client


def add_parser(commands: Subcommands) -> None:
    group = add_command(
        commands,
        "dlq",
        "list, show, redrive or purge dead-lettered entries",
        "Entries a consumer failed INGESTRO_MAX_DELIVERIES times wait in the dead-letter stream. `redrive` "
        "appends an entry to its source stream again (every group of that stream sees it; the projections "
        "ignore what they applied already), then deletes the dead letter. `purge` deletes it for good.",
    )
    actions = subcommands(group)
    add_command(actions, "list", "one line per dead letter: id, who gave up on what, why, and the job", run=_command)
    show = add_command(
        actions, "show", "print one dead letter in full, the original entry's fields included (JSON)", run=_command
    )
    show.add_argument("id", metavar="ID", help="the dead letter's id, as `ingestro dlq list` shows it")
    for name, summary in (
        ("redrive", "append dead letters' entries to their source streams again, then delete the dead letters"),
        ("purge", "delete dead letters for good"),
    ):
        action = add_command(actions, name, summary, run=_command)
        which = action.add_mutually_exclusive_group(required=True)
        which.add_argument("id", nargs="?", metavar="ID", help="one dead letter's id, as `ingestro dlq list` shows it")
        which.add_argument("--all", action="store_true", help="every dead letter there is now")


def _command(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run(settings, args.action, getattr(args, "id", None), getattr(args, "all", False)))


async def run(settings: Settings, action: str, dlq_id: str | None, every: bool, out: TextIO = sys.stdout) -> int:
    """Carry out ``action``; the exit status is 1 when the named dead letter does not exist."""
    redis_url = settings.redis_url
    client = redis_client(settings, socket_timeout=30)
    try:
        if action == "list":
            await _list(client, out)
            return 0
        if action == "show":
            entry = await dlq.get(client, dlq_id or "")
            if entry is None:
                return _missing(dlq_id)
            out.write(orjson.dumps(dlq.details(entry), option=orjson.OPT_INDENT_2).decode() + "\n")
            return 0
        done = 0
        for one in await dlq.every_id(client) if every else [dlq_id or ""]:
            outcome = await _act(client, action, one)
            if outcome is None:
                if not every:
                    return _missing(one)
                continue  # with --all, one gone meanwhile was someone else's to handle
            out.write(outcome + "\n")
            done += 1
        if every:
            out.write(f"{done} dead letter(s) {'redriven' if action == 'redrive' else 'purged'}\n")
        return 0
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        print(f"ingestro: Redis at {redis_url} is unreachable: {error}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()


async def _act(client: aioredis.Redis, action: str, dlq_id: str) -> str | None:
    """Redrive or purge one dead letter; say what was done, or None when there is no such dead letter."""
    if action == "redrive":
        new_id = await dlq.redrive(client, dlq_id)
        return None if new_id is None else f"redriven {dlq_id} -> {new_id}"
    return f"purged {dlq_id}" if await dlq.purge(client, dlq_id) else None


async def _list(client: aioredis.Redis, out: TextIO) -> None:
    after: str | None = None
    count = 0
    while page := await dlq.page(client, after):
        for entry in page:
            view = dlq.summary(entry)
            job = f"job {view['job_id']}" if view["job_id"] else "no job"
            out.write(f"{entry.id}  {entry.letter.describe()}  [{job}]\n")
        count += len(page)
        after = page[-1].id
    out.write(f"{count} dead letter(s)\n")


def _missing(dlq_id: str | None) -> int:
    print(f"ingestro: no dead letter {dlq_id!r}", file=sys.stderr)
    return 1
