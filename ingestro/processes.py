"""How a consumer process is put together, for any consumer group of ``ingestro.services.consumer_groups``."""

from __future__ import annotations

import asyncio
import socket

import redis.asyncio as aioredis

from ingestro import logs
from ingestro.config import Settings
from ingestro.database import create_pool
from ingestro.services.consumer_groups import consumer_group, group_stream_keys
from ingestro.storage import storage_for
from ingestro.storage.retention import run_file_retention
from ingestro.streams import connections
from ingestro.streams.layout import refuse_legacy_streams
from ingestro.streams.names import JOBS_GROUP, stream_keys
from ingestro.streams.outages import until_answered
from ingestro.streams.retention import run_retention
from ingestro.streams.runtime import Consumer, ConsumerSettings, Entry, Handler


def consumer_name(settings: Settings, slot: int) -> str:
    """A name stable across restarts of the same process slot: configured, or HOSTNAME-SLOT."""
    return settings.consumer_name or f"{socket.gethostname()}-{slot}"


def with_log_context(group: str, handler: Handler) -> Handler:
    """``handler``, with the entry it handles (stream, group, entry id) on every record it logs."""

    async def handle(entry: Entry) -> None:
        with logs.bound(stream=entry.stream, group=group, entry_id=entry.id):
            await handler(entry)

    return handle


def redis_client(settings: Settings) -> aioredis.Redis:
    """A Redis client whose socket timeout outlasts the consumers' blocking reads."""
    return connections.redis_client(settings, socket_timeout=settings.block_ms / 1000 + 10)


def consumer_settings(settings: Settings, *, grouped: bool = True) -> ConsumerSettings:
    """The runtime's settings; a consumer without a group handler (``grouped``) reads no more entries than it
    handles at once, leaving the rest to the group (the parser: one big file's ranges go to every parser)."""
    return ConsumerSettings(
        block_ms=settings.block_ms,
        read_count=max(settings.concurrency, 1) * (max(settings.group_size, 2) if grouped else 1),
        concurrency=settings.concurrency,
        group_size=settings.group_size,
        group_linger_ms=settings.group_linger_ms,
        visibility_timeout_s=settings.visibility_timeout_s,
        max_deliveries=settings.max_deliveries,
    )


async def run_consumer(name: str, settings: Settings, slot: int, stop: asyncio.Event) -> None:
    """Run consumer ``name`` until ``stop`` is set; UnknownConsumer (a ValueError) for a name no group has;
    LegacyStreams when Redis still holds streams of the un-partitioned layout (``ingestro.streams.layout``)."""
    group = consumer_group(name)
    redis = redis_client(settings)
    # min_size=0: the process starts (and waits out an outage) even when PostgreSQL is down.
    pool = await create_pool(settings.database_url, min_size=0, max_size=max(settings.concurrency, 1) + 1)
    try:
        await until_answered(lambda: refuse_legacy_streams(redis), "checking for legacy streams")
        handlers = group.make(settings, redis, pool)
        consumer = Consumer(
            redis,
            group=name,
            streams=stream_keys(group.streams, settings.partitions),
            name=consumer_name(settings, slot),
            handler=with_log_context(name, handlers.entry),
            settings=consumer_settings(settings, grouped=handlers.group is not None),
            group_handler=handlers.group,
        )
        if name == JOBS_GROUP:
            # Retention runs beside the `jobs` consumer: see ingestro.streams.retention for why there.
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(consumer.run(stop))
                tasks.create_task(
                    run_retention(
                        redis,
                        group_stream_keys(settings.partitions),
                        settings.stream_retention_s,
                        settings.retention_interval_s,
                        stop,
                    )
                )
                if settings.file_retention_days is not None:  # ingestro.storage.retention: files of finished jobs
                    tasks.create_task(
                        run_file_retention(
                            pool,
                            storage_for(settings),
                            settings.file_retention_days,
                            settings.retention_interval_s,
                            stop,
                        )
                    )
        else:
            await consumer.run(stop)
    finally:
        await pool.close()
        await redis.aclose()
