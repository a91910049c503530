"""Gauges of shared state, read at scrape time: stream backlog (XINFO) and jobs by status.

Only the API exports these (on ``GET /metrics``); consumer replicas export only
what they did themselves, so the backlog is reported once, not once per replica.
(Should the API itself run several replicas, each reports the same values:
aggregate them with ``max``, as the dashboard does, never ``sum``.)

Prometheus collectors are synchronous and our clients are async, so the
endpoint awaits ``refresh()`` before rendering and ``collect()`` yields the
snapshot it made: no background task, no second (blocking) Redis client, and
values as fresh as the scrape. Scrapes closer together than ``max_age_s`` share
one snapshot, so many scrapers cost Redis and PostgreSQL one read per interval.
Every read has a timeout; a source that cannot be read exports nothing (absent
rather than stale) and counts in ``ingestro_collector_errors_total``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Iterator, Mapping, Sequence

import asyncpg
import attrs
import redis.asyncio as aioredis
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from ingestro import metrics
from ingestro.domain.jobs import STATUSES
from ingestro.streams.names import DLQ_STREAM
from ingestro.streams.state import read_groups

log = logging.getLogger(__name__)


def streams_read(group_streams: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Every stream a consumer group reads, the dead-letter stream included, sorted; ``group_streams`` (the streams
    each group reads) comes from the entry points (``ingestro.services.consumer_groups.GROUP_STREAMS``)."""
    return tuple(sorted({s for streams in group_streams.values() for s in streams} | {DLQ_STREAM}))


def _families() -> dict[str, GaugeMetricFamily]:
    """Fresh, empty gauge families, one per name; the collector's whole output."""
    by_group = ["stream", "group"]
    return {
        family.name: family
        for family in (
            GaugeMetricFamily(metrics.STREAM_LENGTH, "Entries in the stream (XLEN)", labels=["stream"]),
            GaugeMetricFamily(
                metrics.GROUP_LAG,
                "Entries of the stream not yet delivered to the group; absent when Redis cannot tell (after deletions)",
                labels=by_group,
            ),
            GaugeMetricFamily(metrics.GROUP_PENDING, "Entries delivered to the group but not acked", labels=by_group),
            GaugeMetricFamily(
                metrics.GROUP_OLDEST_PENDING_IDLE_SECONDS,
                "Time since the group's oldest pending entry was last delivered (0 when none is pending)",
                labels=by_group,
            ),
            GaugeMetricFamily(metrics.GROUP_CONSUMERS, "Consumers registered in the group", labels=by_group),
            GaugeMetricFamily(metrics.JOBS, "Jobs in the jobs table, by status", labels=["status"]),
        )
    }


async def read_backlog(redis: aioredis.Redis, streams: Sequence[str]) -> list[Metric]:
    """Per stream (of ``streams``) its length; per consumer group reading it its lag (when known), pending, oldest
    pending idle, consumers."""
    families = _families()
    for stream in streams:
        families[metrics.STREAM_LENGTH].add_metric([stream], await redis.xlen(stream))
        for group in await read_groups(redis, stream):
            labels = [stream, group.name]
            families[metrics.GROUP_PENDING].add_metric(labels, group.pending)
            families[metrics.GROUP_CONSUMERS].add_metric(labels, group.consumers)
            if group.lag is not None:
                families[metrics.GROUP_LAG].add_metric(labels, group.lag)
            families[metrics.GROUP_OLDEST_PENDING_IDLE_SECONDS].add_metric(labels, group.oldest_pending_idle_s)
    return [families[name] for name in families if name != metrics.JOBS]


async def read_jobs(pool: asyncpg.Pool) -> list[Metric]:
    """Jobs by status, every status present (0 when no job has it, so an alert on one status has a series to watch
    before the first such job)."""
    rows = await pool.fetch("SELECT status, count(*) AS jobs FROM jobs GROUP BY status")
    counts = {status.value: 0 for status in STATUSES} | {row["status"]: row["jobs"] for row in rows}
    family = _families()[metrics.JOBS]
    for status, count in counts.items():
        family.add_metric([status], count)
    return [family]


@attrs.define(eq=False)  # a registry keys its collectors by identity
class SharedStateCollector:
    """A Prometheus collector over the last snapshot ``refresh()`` took."""

    #: The streams whose backlog it reads (``streams_read``).
    streams: tuple[str, ...]
    max_age_s: float = 2.0
    timeout_s: float = 3.0
    _snapshot: dict[str, list[Metric]] = attrs.field(factory=dict, init=False)
    _taken_at: float = attrs.field(default=-math.inf, init=False)
    _lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    async def refresh(self, redis: aioredis.Redis, pool: asyncpg.Pool) -> None:
        """Read Redis and PostgreSQL again, unless the snapshot is younger than ``max_age_s``."""
        async with self._lock:  # concurrent scrapes wait for one read instead of each making theirs
            if time.monotonic() - self._taken_at < self.max_age_s:
                return
            backlog, jobs = await asyncio.gather(
                self._read("redis", read_backlog(redis, self.streams)), self._read("postgres", read_jobs(pool))
            )
            self._snapshot = {"redis": backlog, "postgres": jobs}
            self._taken_at = time.monotonic()

    async def _read(self, source: str, reading: Awaitable[list[Metric]]) -> list[Metric]:
        try:
            return await asyncio.wait_for(reading, self.timeout_s)
        except Exception as error:  # the scrape must still serve the rest; the failure is counted and logged
            metrics.COLLECTOR_ERRORS.labels(source).inc()
            log.warning(
                "could not read %s for the metrics", source, extra={"error": f"{type(error).__name__}: {error}"}
            )
            return []

    def describe(self) -> Iterator[Metric]:
        """The names this collector exports, so a registry can check them without reading anything."""
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        for families in self._snapshot.values():
            yield from families
