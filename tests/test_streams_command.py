"""``ingestro streams`` on a real Redis: sizes, first and last entries, and each group's standing."""

from __future__ import annotations

import io

import redis.asyncio as aioredis

from ingestro.cli import streams as streams_command
from ingestro.cli.main import build_parser
from ingestro.config import Settings
from ingestro.devtools.servers import RedisServer
from ingestro.streams.names import ACCEPTED_STREAM, DATA_GROUP, FILES_STREAM, JOBS_GROUP, PARSER_GROUP, partition_key

ACCEPTED = partition_key(ACCEPTED_STREAM, 3, Settings.from_env({}).partitions)


async def lines(redis_server: RedisServer) -> list[str]:
    out = io.StringIO()
    assert await streams_command.run(Settings.from_env({}, redis_url=redis_server.url), out) == 0
    return out.getvalue().splitlines()


def line_of(output: list[str], start: str) -> str:
    return next(line for line in output if line.startswith(start))


async def test_each_stream_shows_its_length_memory_and_first_and_last_entries(
    redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    for entry_id in ("5-0", "6-0", "7-0"):
        await redis.xadd(ACCEPTED, {"n": entry_id}, id=entry_id)

    output = await lines(redis_server)

    stream = line_of(output, ACCEPTED)  # each partition of a row stream is a stream of its own
    assert "length=3" in stream and "first=5-0" in stream and "last=7-0" in stream
    assert "memory=" in stream and "memory=0 B" not in stream
    assert line_of(output, FILES_STREAM) == f"{FILES_STREAM}  length=0 (no stream)"


async def test_each_group_shows_its_lag_pending_oldest_pending_idle_and_consumers(
    redis: aioredis.Redis, redis_server: RedisServer
) -> None:
    for entry_id in ("1-0", "2-0", "3-0"):
        await redis.xadd(FILES_STREAM, {"n": entry_id}, id=entry_id)
    await redis.xgroup_create(FILES_STREAM, PARSER_GROUP, id="0")
    await redis.xgroup_create(FILES_STREAM, JOBS_GROUP, id="0")
    await redis.xreadgroup(PARSER_GROUP, "p1", {FILES_STREAM: ">"}, count=2)  # two pending, one not delivered
    await redis.xreadgroup(JOBS_GROUP, "j1", {FILES_STREAM: ">"})
    await redis.xack(FILES_STREAM, JOBS_GROUP, "1-0", "2-0", "3-0")

    output = await lines(redis_server)

    parser = line_of(output, f"  group {PARSER_GROUP} ")
    assert "lag=1" in parser and "pending=2" in parser and "consumers=1" in parser
    assert "oldest_pending_idle=" in parser and "oldest_pending_idle=-" not in parser
    jobs = line_of(output, f"  group {JOBS_GROUP} ")
    assert jobs == f"  group {JOBS_GROUP}  lag=0  pending=0  oldest_pending_idle=-  consumers=1"
    # Groups are listed under their own stream.
    assert output.index(parser) > output.index(line_of(output, FILES_STREAM))
    assert not any(line.startswith(f"  group {DATA_GROUP} ") for line in output)


def test_streams_is_a_command() -> None:
    args = build_parser().parse_args(["streams"])
    assert args.run is streams_command.command
