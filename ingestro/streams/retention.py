"""Stream retention: trim entries every consumer group is done with and that are older than a window.

Redis 7.0 has no "trim what every group acked", so the safe point is computed per
stream: for each group, its oldest pending entry (every id below it was acked), or
when it holds none, just past its last-delivered id (every later entry is not yet
delivered); the lowest of those over the groups, capped at ``now - retention``.
``XTRIM MINID`` (exact) then deletes the entries below it, and only those.

It runs beside the ``jobs`` consumer (``ingestro.processes``): every deployment runs
that process, its load is light (small lifecycle events), and no user waits on it;
the API serves requests, may run many replicas or none, and stays free of
background work. Running it concurrently (several ``jobs`` replicas) is safe: a group's safe point only moves
forward (deliveries take new ids, acks shrink the pending list), so a stale point
trims less, never more. Which groups read which streams is the caller's to say
(``group_streams``: ``ingestro.services.consumer_groups.GROUP_STREAMS``, from the consumers and the
projection registry, which live above this layer). A stream missing one of the groups expected on
it is not trimmed at all: that group will be created later, reading from the start, and must find
every entry there. The dead-letter stream is never
trimmed: its entries wait for an operator (``ingestro dlq``). A stream also followed by plain XREAD
(``FOLLOWED_STREAMS``: job status changes, which ``GET /jobs/{id}/events`` follows and the
``notifications`` group reads) keeps its entries at least ``FOLLOWED_FLOOR_S`` whatever the window, so
that a follower who just connected still finds the changes since its job's start; past that, it is
trimmed like the others (what its groups acked), or, when no group reads it, by age alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import redis.asyncio as aioredis

from ingestro.streams.maintenance import run_rounds
from ingestro.streams.names import DLQ_STREAM, FOLLOWED_STREAMS
from ingestro.streams.state import GroupState, read_groups

log = logging.getLogger(__name__)

#: The streams each consumer group reads, by group.
GroupStreams = Mapping[str, tuple[str, ...]]


def trimmed_streams(group_streams: GroupStreams) -> dict[str, frozenset[str]]:
    """Each stream retention trims (every stream a group reads but the DLQ), with the groups that must exist on it
    before it may be trimmed."""
    return {
        stream: frozenset(group for group, streams in group_streams.items() if stream in streams)
        for stream in sorted({s for streams in group_streams.values() for s in streams} - {DLQ_STREAM})
    }


#: Entries of a followed stream stay at least this long, whatever the retention window.
FOLLOWED_FLOOR_S = 3600.0


def _parse(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a value that sorts as Redis orders ids."""
    return _parse(entry_id)


def _group_bound(group: GroupState) -> tuple[int, int]:
    """The lowest id the group may still need: its oldest pending one, or the one after its last delivered."""
    if group.oldest_pending_id is not None:
        return _parse(group.oldest_pending_id)
    ms, seq = _parse(group.last_delivered_id)
    return ms, seq + 1


def safe_min_id(groups: list[GroupState], expected: frozenset[str], retention_s: float, now_ms: int) -> str | None:
    """The MINID below which every entry may be trimmed, or None when nothing may be (a group is missing)."""
    if not groups or not expected <= {group.name for group in groups}:
        return None
    bound = min([_group_bound(group) for group in groups] + [(now_ms - int(retention_s * 1000), 0)])
    return f"{bound[0]}-{bound[1]}"


async def trim_stream(
    redis: aioredis.Redis, stream: str, groups: frozenset[str], retention_s: float, now_ms: int | None = None
) -> int:
    """Trim ``stream`` to what some group may still need or the window keeps; return the entries deleted.

    ``groups``: the groups that read it, each of which must exist on it before anything is trimmed.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    min_id = safe_min_id(await read_groups(redis, stream), groups, retention_s, now_ms)
    if min_id is None:
        return 0
    return int(await redis.xtrim(stream, minid=min_id, approximate=False))


async def trim_streams(redis: aioredis.Redis, group_streams: GroupStreams, retention_s: float) -> dict[str, int]:
    """Trim every stream but the dead-letter stream; return the entries deleted from each."""
    deleted = {
        stream: await trim_stream(
            redis, stream, groups, max(retention_s, FOLLOWED_FLOOR_S) if stream in FOLLOWED_STREAMS else retention_s
        )
        for stream, groups in trimmed_streams(group_streams).items()
    }
    for stream in FOLLOWED_STREAMS:
        if stream not in deleted:
            deleted[stream] = await trim_by_age(redis, stream, retention_s)
    return deleted


async def trim_by_age(redis: aioredis.Redis, stream: str, retention_s: float, now_ms: int | None = None) -> int:
    """Trim a followed stream no group reads to the window (at least ``FOLLOWED_FLOOR_S``); the entries deleted."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    min_id = f"{now_ms - int(max(retention_s, FOLLOWED_FLOOR_S) * 1000)}-0"
    return int(await redis.xtrim(stream, minid=min_id, approximate=False))


async def run_retention(
    redis: aioredis.Redis, group_streams: GroupStreams, retention_s: float, interval_s: float, stop: asyncio.Event
) -> None:
    """Trim every ``interval_s`` until ``stop`` is set; a round that fails is logged and skipped."""

    async def trim() -> None:
        deleted = await trim_streams(redis, group_streams, retention_s)
        if any(deleted.values()):
            log.info("trimmed streams", extra={"deleted": deleted})

    await run_rounds("stream retention", trim, interval_s, stop)
