"""``ingestro streams``: each stream's size and where each consumer group stands on it, for people."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

import redis.asyncio as aioredis

from ingestro.cli._parsers import Subcommands, add_command
from ingestro.config import Settings
from ingestro.streams.collector import streams_read
from ingestro.streams.connections import redis_client, text
from ingestro.streams.state import GroupState, read_groups


def add_parser(commands: Subcommands) -> None:
    add_command(
        commands,
        "streams",
        "show each stream's length, memory, first and last entry, and where each consumer group stands",
        "Per stream: length, memory (MEMORY USAGE), first and last entry id. Per consumer group reading it: "
        "lag (entries not yet delivered), pending (delivered, not acked), idle time of the oldest pending "
        "entry, consumers.",
        command,
    )


def command(_args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run(settings))


async def run(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Print every stream (the dead-letter stream included), then one line per group reading it."""
    # Imported here, not at the top: it loads every consumer and projection (see ingestro.cli.choices).
    from ingestro.services.consumer_groups import group_stream_keys

    client = redis_client(settings, socket_timeout=30)
    try:
        for stream in streams_read(group_stream_keys(settings.partitions)):
            out.write(await _stream_line(client, stream) + "\n")
            for group in await read_groups(client, stream):
                out.write(_group_line(group) + "\n")
    finally:
        await client.aclose()
    return 0


async def _stream_line(client: aioredis.Redis, stream: str) -> str:
    if not await client.exists(stream):
        return f"{stream}  length=0 (no stream)"
    info: dict[str, Any] = await client.xinfo_stream(stream)
    memory = await client.memory_usage(stream) or 0
    return (
        f"{stream}  length={info['length']}  memory={_size(memory)}"
        f"  first={_entry_id(info.get('first-entry'))}  last={_entry_id(info.get('last-entry'))}"
    )


def _group_line(group: GroupState) -> str:
    lag = "unknown" if group.lag is None else str(group.lag)  # Redis cannot tell after deletions past the group
    idle = f"{group.oldest_pending_idle_s:.1f}s" if group.pending else "-"
    return (
        f"  group {group.name}  lag={lag}  pending={group.pending}"
        f"  oldest_pending_idle={idle}  consumers={group.consumers}"
    )


def _entry_id(entry: Any) -> str:
    """The id of an XINFO STREAM first-entry / last-entry (an (id, fields) pair), or "-" when empty."""
    if not entry:
        return "-"
    return text(entry[0])


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
