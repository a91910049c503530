"""``ingestro dlq list|show ID|redrive ID|--all|purge ID|--all``: the dead-letter stream for people."""

from __future__ import annotations

import sys
from typing import TextIO

import orjson
import redis.asyncio as aioredis
import redis.exceptions

from ingestro.streams import dlq
from ingestro.streams.connections import redis_client


def usage_error(action: str, dlq_id: str | None, every: bool) -> str | None:
    """Why these arguments do not make a command, or None when they do."""
    if action == "list":
        return "list takes no ID and no --all" if dlq_id or every else None
    if action == "show":
        return "show takes one ID" if not dlq_id or every else None
    if bool(dlq_id) == every:
        return f"{action} takes one ID or --all"
    return None


async def run(redis_url: str, action: str, dlq_id: str | None, every: bool, out: TextIO = sys.stdout) -> int:
    """Carry out ``action``; the exit status is 1 when the named dead letter does not exist."""
    client = redis_client(redis_url, socket_timeout=30)
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
