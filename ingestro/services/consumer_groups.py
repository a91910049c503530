"""Every consumer group, from one table: the parser, the fetcher (pull imports), each registered projection,
then notifications (webhooks).

Each consumer says its own name and streams (``Parser.name``/``streams``, ``Projection.name``/``streams``);
this table gathers them with how its handler is made, and ``GROUP_STREAMS`` is derived from it. The
process wiring runs a group from here; retention, the metrics collector and ``ingestro streams``
(in ``ingestro.streams``, below this layer) are handed ``GROUP_STREAMS`` by the entry points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import asyncpg
import attrs
import redis.asyncio as aioredis

from consumers.fetcher import Fetcher
from consumers.notifications import Notifications
from consumers.parser import Parser
from ingestro.config import Settings
from ingestro.datasets.registry import DatasetRegistry
from ingestro.sources import AllowList
from ingestro.storage import storage_for
from ingestro.streams.backpressure import Backpressure, row_stream_readers
from ingestro.streams.names import ROW_STREAMS, stream_keys
from ingestro.streams.runtime import GroupHandler, Handler
from projections.projection import Projection
from projections.registry import PROJECTIONS


@attrs.frozen
class Handlers:
    """What the runtime calls: one entry at a time, and (the projections) a group of entries in one transaction."""

    entry: Handler
    group: GroupHandler | None = None


@attrs.frozen
class ConsumerGroup:
    name: str
    #: The streams the group reads.
    streams: tuple[str, ...]
    #: Makes a consumer process's handlers, from the settings and the process's clients.
    make: Callable[[Settings, aioredis.Redis, asyncpg.Pool], Handlers]


def _parser(settings: Settings, redis: aioredis.Redis, pool: asyncpg.Pool) -> Handlers:
    readers = row_stream_readers(stream_keys(ROW_STREAMS, settings.partitions), group_stream_keys(settings.partitions))
    backpressure = Backpressure(redis, readers, settings.max_backlog)
    return Handlers(
        Parser(
            redis,
            storage_for(settings),
            DatasetRegistry(pool),
            settings.batch_size,
            settings.limits,
            backpressure,
            partitions=settings.partitions,
            range_bytes=settings.parse_range_bytes,
        )
    )


def _fetcher(settings: Settings, redis: aioredis.Redis, _pool: asyncpg.Pool) -> Handlers:
    return Handlers(
        Fetcher(
            redis,
            storage_for(settings),
            AllowList(settings.import_allow),
            settings.max_upload_bytes,
            settings.s3_endpoint_url,
        )
    )


def _notifications(settings: Settings, _redis: aioredis.Redis, pool: asyncpg.Pool) -> Handlers:
    return Handlers(Notifications(pool, AllowList(settings.import_allow), settings.webhook_attempts))


def _projection(projection: type[Projection]) -> ConsumerGroup:
    def make(_settings: Settings, redis: aioredis.Redis, pool: asyncpg.Pool) -> Handlers:
        handler = projection(pool, redis)
        return Handlers(handler, handler.handle_group)

    return ConsumerGroup(projection.name, projection.streams, make)


#: Every consumer group by name: the parser, the fetcher, the projections in registry order, notifications.
CONSUMER_GROUPS: Mapping[str, ConsumerGroup] = {
    group.name: group
    for group in (
        ConsumerGroup(Parser.name, Parser.streams, _parser),
        ConsumerGroup(Fetcher.name, Fetcher.streams, _fetcher),
        *(_projection(projection) for projection in PROJECTIONS.values()),
        ConsumerGroup(Notifications.name, Notifications.streams, _notifications),
    )
}
#: The names ``ingestro consume`` accepts, and the services a deployment runs.
CONSUMER_NAMES: tuple[str, ...] = tuple(CONSUMER_GROUPS)
#: The streams each consumer group reads, as the consumers declare them (a row stream by its logical name). A group
#: may read several streams and a kind of event may live in several streams; the runtime assumes neither.
GROUP_STREAMS: Mapping[str, tuple[str, ...]] = {name: group.streams for name, group in CONSUMER_GROUPS.items()}


def group_stream_keys(partitions: int) -> dict[str, tuple[str, ...]]:
    """The stream keys each consumer group reads, every row stream as its ``partitions`` keys: what the consumers,
    retention, the metrics collector and ``ingestro streams`` enumerate."""
    return {name: stream_keys(streams, partitions) for name, streams in GROUP_STREAMS.items()}


class UnknownConsumer(ValueError):
    """No consumer group has that name."""


def consumer_group(name: str) -> ConsumerGroup:
    """The consumer group called ``name``; UnknownConsumer names the choices."""
    try:
        return CONSUMER_GROUPS[name]
    except KeyError:
        raise UnknownConsumer(f"unknown consumer {name!r}; choose from {', '.join(CONSUMER_NAMES)}") from None
