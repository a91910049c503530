"""Shared fixtures: one private redis-server and one PostgreSQL for the whole test session."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ingestro.database.schema import prepare_database
from ingestro.devtools.servers import PostgresServer, RedisClusterServers, RedisServer
from tests.stack import Stack, StackFactory

# pure / server / system / slow, assigned from the fixtures each test uses (tests/markers.py).
pytest_plugins = ["tests.markers"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A started redis-server with AOF on, stopped after the session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A started 3-master Redis Cluster on loopback, stopped after the session."""
    with RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"), masters=3) as cluster:
        yield cluster


@pytest.fixture
def redis_mode() -> str:
    """The Redis the stack runs on: ``single`` (the session's redis-server), or ``cluster`` (the session's cluster)
    where a module parametrizes it: ``pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES)``."""
    return "single"


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
def stack_factory(request: pytest.FixtureRequest, redis_mode: str, migrated: str, tmp_path: Path) -> StackFactory:
    """Opens stacks with settings of the test's choosing: ``async for stack in stack_factory.open(**settings)``; on
    the Redis of ``redis_mode``."""
    server: RedisServer | RedisClusterServers = request.getfixturevalue(
        "redis_cluster" if redis_mode == "cluster" else "redis_server"
    )
    return StackFactory(server.url, migrated, tmp_path / "uploads", redis_mode)


@pytest.fixture
async def stack(stack_factory: StackFactory) -> AsyncIterator[Stack]:
    """An API client and consumers on empty streams and tables (consumers start on request)."""
    async for running in stack_factory.open():
        yield running
