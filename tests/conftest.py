"""Shared fixtures: one private redis-server and one PostgreSQL for the whole test session."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ingestro.database.schema import prepare_database
from ingestro.devtools.servers import PostgresServer, RedisServer
from tests.stack import Stack, StackFactory

# pure / server / system / slow, assigned from the fixtures each test uses (tests/markers.py).
pytest_plugins = ["tests.markers"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A started redis-server with AOF on, stopped after the session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A started, non-durable PostgreSQL with database ``ingestro``, stopped after the session."""
    # The temporary directory itself, whose parent is the world-searchable /tmp:
    # as root, a directory inside pytest's private (0700) ones would push the
    # cluster to /var/tmp, where nothing would ever remove it.
    with (
        tempfile.TemporaryDirectory(prefix="ingestro-test-pg-") as tmp,
        PostgresServer(Path(tmp), durable=False) as server,
    ):
        yield server


@pytest.fixture(scope="session")
async def migrated(postgres_server: PostgresServer) -> str:
    """The database URL, with every migration applied and the built-in datasets declared, once per session."""
    await prepare_database(postgres_server.url)
    return postgres_server.url


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's Redis, emptied first."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def stack_factory(redis_server: RedisServer, migrated: str, tmp_path: Path) -> StackFactory:
    """Opens stacks with settings of the test's choosing: ``async for stack in stack_factory.open(**settings)``."""
    return StackFactory(redis_server.url, migrated, tmp_path / "uploads")


@pytest.fixture
async def stack(stack_factory: StackFactory) -> AsyncIterator[Stack]:
    """An API client and consumers on empty streams and tables (consumers start on request)."""
    async for running in stack_factory.open():
        yield running
