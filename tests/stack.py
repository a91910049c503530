"""A running Ingestro stack for tests: the API in-process and consumers as asyncio tasks.

Real redis-server and PostgreSQL (started once per session by conftest); each
test gets empty streams and empty tables.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import httpx
import pytest
import redis.asyncio as aioredis

from ingestro.api.app import create_app
from ingestro.config import Settings
from ingestro.database import create_pool
from ingestro.datasets import builtin_datasets
from ingestro.datasets.tables import qualified_table
from ingestro.processes import run_consumer
from ingestro.services.consumer_groups import CONSUMER_NAMES, group_stream_keys
from ingestro.streams.connections import redis_client
from ingestro.streams.names import failures_key, partition_keys
from projections.replay import Outcome as ReplayOutcome
from projections.replay import replay

#: Both Redis modes, for a module that runs its stack tests on each: see the ``redis_mode`` fixture (tests/conftest.py).
REDIS_MODES = ("single", pytest.param("cluster", marks=pytest.mark.system))

TABLES = (
    "jobs",
    "job_batches",
    "applied_batches",
    "validation_errors",
    "contacts",
    "api_keys",
    "deleted_files",
    "column_mappings",
    "webhooks",
    "webhook_dead_letters",
)


def stack_settings(redis_url: str, database_url: str, upload_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "database_url": database_url,
        "upload_dir": upload_dir,
        "block_ms": 100,
        "visibility_timeout_s": 10,
        "batch_size": 100,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


async def failure_records(redis: aioredis.Redis, partitions: int) -> dict[str, int]:
    """The failure records each consumer group holds, over every stream it reads."""
    return {
        group: sum([await redis.hlen(failures_key(group, stream)) for stream in streams])
        for group, streams in group_stream_keys(partitions).items()
    }


async def row_stream_length(redis: aioredis.Redis, stream: str, partitions: int) -> int:
    """Entries of a row stream, over its partitions."""
    return sum([await redis.xlen(key) for key in partition_keys(stream, partitions)])


async def reset(redis: aioredis.Redis, pool: asyncpg.Pool) -> None:
    """Empty every stream and every table, and forget every dataset a test declared."""
    await redis.flushdb()
    await pool.execute(f"TRUNCATE {', '.join(TABLES)}")
    declared = await pool.fetch(
        "SELECT DISTINCT declaration->>'table' AS table_name FROM datasets WHERE name <> ALL($1::text[])",
        list(builtin_datasets()),
    )
    for row in declared:
        await pool.execute(f"DROP TABLE IF EXISTS {qualified_table(row['table_name'])}")
    await pool.execute("DELETE FROM datasets WHERE name <> ALL($1::text[]) OR version > 1", list(builtin_datasets()))


@attrs.define
class Stack:
    settings: Settings
    client: httpx.AsyncClient
    redis: aioredis.Redis
    pool: asyncpg.Pool
    _stop: asyncio.Event = attrs.field(factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = attrs.field(factory=list)

    def start_consumers(self, copies: int = 1, names: tuple[str, ...] = CONSUMER_NAMES) -> None:
        """Run ``copies`` consumers of each name, each a distinct member of its group."""
        for name in names:
            for slot in range(copies):
                settings = attrs.evolve(self.settings, consumer_name=f"test-{name}-{slot}-{len(self._tasks)}")
                self._tasks.append(asyncio.create_task(run_consumer(name, settings, slot, self._stop)))

    def consumers_alive(self) -> bool:
        """Whether every consumer started is still running (none ended on an escaped exception)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def stop_consumers(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        self._tasks.clear()
        self._stop = asyncio.Event()

    async def upload(
        self, content: bytes, content_type: str = "text/csv", dataset: str | None = None
    ) -> dict[str, Any]:
        params = {"dataset": dataset} if dataset else {}
        response = await self.client.post(
            "/upload", content=content, headers={"content-type": content_type}, params=params
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for_job(
        self, job_id: str, timeout: float = 60, statuses: tuple[str, ...] = ("completed", "failed")
    ) -> dict[str, Any]:
        """Poll the job until its status is one of ``statuses``; fail the test on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.client.get(f"/jobs/{job_id}")
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            if job["status"] in statuses:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")
            await asyncio.sleep(0.05)

    async def replay(self, projection: str, **options: Any) -> ReplayOutcome:
        """``ingestro replay PROJECTION`` on this stack; ``options`` as ``projections.replay.replay`` takes them
        (its report goes nowhere unless ``out`` is given)."""
        options.setdefault("out", io.StringIO())
        return await replay(
            self.settings.database_url, self.redis, projection, partitions=self.settings.partitions, **options
        )

    async def wait_idle(self, timeout: float = 30) -> None:
        """Wait until every group has read every entry of its streams and holds none pending."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 3:  # handlers publish new entries: idle three checks in a row
            busy = False
            for group, streams in group_stream_keys(self.settings.partitions).items():
                for stream in streams:
                    if not await self.redis.exists(stream):
                        continue
                    last = (await self.redis.xinfo_stream(stream))["last-generated-id"]
                    for info in await self.redis.xinfo_groups(stream):
                        if info["name"].decode() == group:
                            busy |= info["pending"] > 0 or info["last-delivered-id"] != last
            quiet = 0 if busy else quiet + 1
            if time.monotonic() > deadline:
                raise AssertionError("consumers did not go idle")
            await asyncio.sleep(0.1)

    async def follow_pages(self, url: str) -> list[dict[str, Any]]:
        """Every item of a paginated list, following its ``Link: <…>; rel="next"`` headers from ``url``."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            response = await self.client.get(next_url)
            assert response.status_code == 200, response.text
            items += response.json()["items"]
            link = response.headers.get("link")
            next_url = link[1 : link.index(">")] if link else None
        return items

    async def ingest(self, content: bytes, content_type: str = "text/csv") -> dict[str, Any]:
        accepted = await self.upload(content, content_type)
        return await self.wait_for_job(accepted["job_id"])


@attrs.define
class StackFactory:
    redis_url: str
    database_url: str
    upload_dir: Path
    redis_mode: str = "single"

    async def open(self, *, keys: bool = False, **overrides: Any) -> AsyncIterator[Stack]:
        """A stack with these settings; without ``keys`` its API runs insecure (no API keys needed)."""
        settings = stack_settings(
            self.redis_url, self.database_url, self.upload_dir, **{"redis_mode": self.redis_mode, **overrides}
        )
        app = create_app(settings, insecure=not keys)
        redis = redis_client(settings, socket_timeout=30)
        pool = await create_pool(settings.database_url, min_size=1, max_size=4)
        await reset(redis, pool)
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://ingestro.test") as client:
                    stack = Stack(settings, client, redis, pool)
                    try:
                        yield stack
                    finally:
                        await stack.stop_consumers()
        finally:
            await pool.close()
            await redis.aclose()
