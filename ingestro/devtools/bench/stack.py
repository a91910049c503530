"""The stack under test: private durable servers, then the API and every consumer as its own OS process."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self, cast

import attrs
import httpx
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from ingestro.database.schema import prepare_database
from ingestro.devtools.bench.streams_memory import PARTITIONS
from ingestro.devtools.servers import HOST, PostgresServer, RedisClusterServers, RedisServer, free_port
from ingestro.devtools.supervisor import Child, stop_all
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.names import DATA_GROUP, ERRORS_GROUP, JOBS_GROUP, PARSER_GROUP

_COMMAND = (sys.executable, "-m", "ingestro")
#: Labels of the servers among ``Stack.pids()`` (a cluster's nodes are ``redis-node-I``); every other label is an
#: Ingestro process.
SERVERS = ("redis-server", "postgres")
CLUSTER_NODE_LABEL = "redis-node-"


def is_server(label: str) -> bool:
    return label in SERVERS or label.startswith(CLUSTER_NODE_LABEL)


_STOP_TIMEOUT_S = 20.0


class BenchError(RuntimeError):
    """The benchmark could not run to the end (a process died, the job did not finish)."""


@attrs.frozen
class Topology:
    """How many processes of each consumer run."""

    parsers: int = 1
    data: int = 2
    errors: int = 1
    jobs: int = 1

    def counts(self) -> dict[str, int]:
        return {PARSER_GROUP: self.parsers, DATA_GROUP: self.data, ERRORS_GROUP: self.errors, JOBS_GROUP: self.jobs}


@attrs.define
class Stack:
    """Servers and Ingestro processes under ``root``; ``with`` stops them all, processes first."""

    root: Path
    #: Masters of a private Redis Cluster to run on (``INGESTRO_REDIS_MODE=cluster``); 0: one redis-server.
    redis_cluster: int = 0
    redis: RedisServer | RedisClusterServers = attrs.field(init=False)
    postgres: PostgresServer = attrs.field(init=False)
    api_url: str = attrs.field(default="", init=False)
    _children: dict[str, Child] = attrs.field(factory=dict, init=False)
    _variables: dict[str, str] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        if self.redis_cluster:
            self.redis = RedisClusterServers(self.root / "redis-cluster", masters=self.redis_cluster)
        else:
            self.redis = RedisServer(self.root / "redis")  # AOF, fsynced every second: as in production
        self.postgres = PostgresServer(self.root / "postgres", durable=True)

    @property
    def upload_dir(self) -> Path:
        return self.root / "uploads"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def start_servers(self) -> None:
        """Start redis-server and PostgreSQL side by side, then apply the migrations."""
        with ThreadPoolExecutor(2) as pool:
            started = [pool.submit(self.redis.start), pool.submit(self.postgres.start)]
        for future in started:
            future.result()
        asyncio.run(prepare_database(self.postgres.url))

    def start_api(self, settings: dict[str, str]) -> None:
        """Run the API; it and every consumer get ``settings`` (``INGESTRO_*``) in their environment, and no other
        ``INGESTRO_*`` variable (see ``ingestro.devtools.supervisor``)."""
        self.log_dir.mkdir(exist_ok=True)
        self._variables = {
            "INGESTRO_REDIS_URL": self.redis.url,
            "INGESTRO_DATABASE_URL": self.postgres.url,
            "INGESTRO_UPLOAD_DIR": str(self.upload_dir),
            "INGESTRO_REDIS_MODE": "cluster" if self.redis_cluster else "single",
            **settings,
        }
        port = free_port()
        self.api_url = f"http://{HOST}:{port}"
        # The benchmark's private stack serves on loopback only, so it needs no API keys.
        self._spawn("api", [*_COMMAND, "api", "--host", HOST, "--port", str(port), "--insecure"])

    def start_consumers(self, counts: dict[str, int]) -> None:
        """Run ``counts[group]`` processes of each consumer group named, slots from 0."""
        for group, count in counts.items():
            for slot in range(count):
                self._spawn(f"{group}-{slot}", [*_COMMAND, "consume", group, "--slot", str(slot)])

    def _spawn(self, label: str, argv: list[str]) -> None:
        # Own session (the supervisor's rule): a Ctrl-C at the terminal reaches only the bench, which stops them.
        child = self._children[label] = Child(label, argv, self._variables, log_path=self.log_dir / f"{label}.log")
        child.start()

    async def wait_ready(self, counts: dict[str, int], timeout_s: float = 60.0) -> None:
        """Return once the API answers ready and ``counts[group]`` consumers have joined each group named."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while not await _answers(client, f"{self.api_url}/readyz"):
                self._wait_step(deadline, "the API did not become ready")
                await asyncio.sleep(0.05)
        streams = self.streams_client()
        try:
            for group, count in counts.items():
                while await _members(streams, group) < count:
                    self._wait_step(deadline, f"the {group} consumers did not all join their group")
                    await asyncio.sleep(0.05)
        finally:
            await streams.aclose()

    def streams_client(self) -> aioredis.Redis:
        """A client of the stack's Redis: a cluster client (typed as the one it stands in for) on a cluster."""
        if isinstance(self.redis, RedisClusterServers):
            return cast(aioredis.Redis, RedisCluster.from_url(self.redis.url))
        return aioredis.Redis.from_url(self.redis.url)

    def _wait_step(self, deadline: float, what: str) -> None:
        self.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(what)

    def check_alive(self) -> None:
        """Raise BenchError, with the end of its log, if an Ingestro process has exited."""
        for label, child in self._children.items():
            if not child.alive():
                raise BenchError(f"{label} exited with code {child.returncode}:\n{child.output()}")

    def pids(self) -> dict[str, int]:
        """The root process of everything measured: Ingestro processes by label, then the servers."""
        pids = {label: child.pid for label, child in self._children.items() if child.pid is not None}
        servers: list[tuple[str, RedisServer | PostgresServer]] = [("postgres", self.postgres)]
        if isinstance(self.redis, RedisClusterServers):
            servers += [(f"{CLUSTER_NODE_LABEL}{index}", node) for index, node in enumerate(self.redis.nodes)]
        else:
            servers.append(("redis-server", self.redis))
        for name, server in servers:
            if server.pid is not None:
                pids[name] = server.pid
        return pids

    def stop(self) -> None:
        stop_all(self._children.values(), signal.SIGTERM, _STOP_TIMEOUT_S)
        self._children.clear()
        self.postgres.stop()
        self.redis.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.stop()


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


async def _members(streams: aioredis.Redis, group: str) -> int:
    """How many consumers have joined ``group`` (on its first stream)."""
    try:
        return len(await streams.xinfo_consumers(group_stream_keys(PARTITIONS)[group][0], group))
    except redis.exceptions.ResponseError:  # the group or its stream does not exist yet
        return 0
