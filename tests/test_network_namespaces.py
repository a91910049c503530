"""The API, the consumers and Redis as separate hosts: each in its own network namespace, joined by veth pairs to a
bridge in a fifth ("switch") namespace, on 10.213.17.0/24 — addresses that exist only inside those namespaces.

A client host uploads a file through the API host (``ingestro upload --wait``); mid-ingestion the consumers' link is
cut (``ip link set down``) and restored, and the job still completes with exact counts and tables. PostgreSQL is the
session's server, reached from the namespaces through a Unix socket the test relays (network namespaces do not
separate the file system, which also holds the upload directory every host shares, as a shared volume would).

The second test does the same with Redis as a 3-master Redis Cluster (``INGESTRO_REDIS_MODE=cluster``) whose
every node is a host of its own, bound to its namespace address and announcing it (``cluster-announce-ip``), so
the clients follow MOVED to addresses that exist only on the bridge.

Needs root (``ip netns add``); skipped with the reason otherwise. CI runs as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import attrs
import pytest

from ingestro.database import create_pool
from ingestro.devtools.samples import write_sample_file
from ingestro.devtools.supervisor import Child, stop_all
from tests.stack import TABLES

pytestmark = [
    pytest.mark.system,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="network namespaces need root and iproute2 (`ip netns add`): run as root (CI does)",
    ),
]

SUBNET = "10.213.17"
#: Each host: its namespace suffix and its address on the bridge.
HOSTS = {"api": f"{SUBNET}.1", "work": f"{SUBNET}.2", "redis": f"{SUBNET}.3", "client": f"{SUBNET}.4"}
#: The same hosts, but Redis is a 3-master cluster whose every node is a host of its own.
REDIS_NODES = ("redis-1", "redis-2", "redis-3")
CLUSTER_HOSTS = {
    **{host: address for host, address in HOSTS.items() if host != "redis"},
    **{node: f"{SUBNET}.{11 + index}" for index, node in enumerate(REDIS_NODES)},
}
REDIS_PORT = 6379


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@attrs.frozen
class Network:
    prefix: str
    #: Each host: its address.
    hosts: dict[str, str]

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def exec_argv(self, host: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def set_link(self, host: str, state: str) -> None:
        ip("-n", self.namespace(host), "link", "set", "eth0", state)


@contextlib.contextmanager
def joined_hosts(hosts: dict[str, str]) -> Iterator[Network]:
    """The namespaces, the bridge and the links; every namespace deleted afterwards, whatever happened."""
    net = Network(f"ingestro-{os.getpid()}", hosts)
    switch = net.namespace("switch")
    made: list[str] = []
    try:
        for name in (switch, *(net.namespace(host) for host in hosts)):
            ip("netns", "add", name)
            made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", switch, "link", "add", "br0", "type", "bridge")
        ip("-n", switch, "link", "set", "br0", "up")
        for host, address in hosts.items():
            port = f"v-{host}"
            ip("-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", net.namespace(host))
            ip("-n", switch, "link", "set", port, "master", "br0", "up")
            ip("-n", net.namespace(host), "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", net.namespace(host), "link", "set", "eth0", "up")
        yield net
    finally:
        for name in reversed(made):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=30)


@pytest.fixture
def network() -> Iterator[Network]:
    with joined_hosts(HOSTS) as net:
        yield net


@pytest.fixture
def cluster_network() -> Iterator[Network]:
    with joined_hosts(CLUSTER_HOSTS) as net:
        yield net


async def relay_unix_to_tcp(socket_path: Path, host: str, port: int) -> asyncio.Server:
    """Serve ``socket_path``, passing each connection's bytes to and from ``host:port``."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    return await asyncio.start_unix_server(serve, path=str(socket_path))


@pytest.fixture
async def shared_dir() -> AsyncIterator[Path]:
    # Short: a Unix socket path must fit in 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="ingestro-ns-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(240)
async def test_hosts_in_network_namespaces_ingest_a_file_through_a_cut_and_restored_link(
    network: Network, migrated: str, shared_dir: Path
) -> None:
    redis = [
        _redis_node(network, "redis", shared_dir, "--save", "", "--appendonly", "no"),
    ]
    await _ingest_through_hosts(
        network, migrated, shared_dir, redis, f"redis://{HOSTS['redis']}:{REDIS_PORT}/0", {}, 30_000
    )


@pytest.mark.timeout(240)
async def test_a_redis_cluster_whose_nodes_are_hosts_ingests_a_file_through_a_cut_and_restored_link(
    cluster_network: Network, migrated: str, shared_dir: Path
) -> None:
    """Three masters, each in its own namespace, announcing the address other hosts reach it at."""
    nodes = [
        _redis_node(
            cluster_network,
            node,
            shared_dir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(shared_dir / node / "nodes.conf"),
            "--cluster-announce-ip",
            CLUSTER_HOSTS[node],
            "--cluster-node-timeout",
            "5000",
        )
        for node in REDIS_NODES
    ]

    def form_cluster() -> None:
        addresses = [f"{CLUSTER_HOSTS[node]}:{REDIS_PORT}" for node in REDIS_NODES]
        argv = cluster_network.exec_argv("client", "redis-cli", "--cluster", "create", *addresses, "--cluster-yes")
        created = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert created.returncode == 0, created.stdout + created.stderr
        deadline = time.monotonic() + 30
        while not all(
            "cluster_state:ok" in _redis_cli(cluster_network, node, "CLUSTER", "INFO") for node in REDIS_NODES
        ):
            assert time.monotonic() < deadline, "the cluster did not become ok"
            time.sleep(0.1)
        # Every node knows the others by their namespace addresses, none by a loopback one.
        for node in REDIS_NODES:
            known = _redis_cli(cluster_network, node, "CLUSTER", "NODES")
            assert all(f"{CLUSTER_HOSTS[other]}:{REDIS_PORT}@" in known for other in REDIS_NODES), known
            assert "127.0.0.1" not in known, known

    await _ingest_through_hosts(
        cluster_network,
        migrated,
        shared_dir,
        nodes,
        f"redis://{CLUSTER_HOSTS[REDIS_NODES[0]]}:{REDIS_PORT}",
        {"INGESTRO_REDIS_MODE": "cluster"},
        10_000,
        form_cluster,
    )


def _redis_node(network: Network, host: str, shared_dir: Path, *options: str) -> Child:
    """A redis-server on ``host``, bound to its address only, its files in ``shared_dir/host``."""
    data = shared_dir / host
    data.mkdir()
    argv = [
        "redis-server",
        "--bind",
        network.hosts[host],
        "--port",
        str(REDIS_PORT),
        "--dir",
        str(data),
        "--protected-mode",  # reachable only from the other namespaces
        "no",
        *options,
    ]
    return Child(host, network.exec_argv(host, *argv), {}, log_path=shared_dir / f"{host}.log")


def _redis_cli(network: Network, host: str, *command: str) -> str:
    """What redis-cli on the client host prints for ``command`` sent to the Redis on ``host`` ("" if none)."""
    argv = network.exec_argv("client", "redis-cli", "-h", network.hosts[host], "-p", str(REDIS_PORT), *command)
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout


async def _ingest_through_hosts(
    network: Network,
    migrated: str,
    shared_dir: Path,
    redis: list[Child],
    redis_url: str,
    settings: dict[str, str],
    rows: int,
    prepare_redis: Callable[[], None] | None = None,
) -> None:
    """Start ``redis`` (then ``prepare_redis``), the API and the consumers on their hosts; upload a file of ``rows``
    rows from the client host, cut the consumers' link for 3 s mid-file, and check the job completes exactly."""
    pool = await create_pool(migrated, min_size=1, max_size=2)
    await pool.execute(f"TRUNCATE {', '.join(TABLES)}")
    database = urlsplit(migrated)
    assert database.hostname is not None and database.port is not None
    relay = await relay_unix_to_tcp(shared_dir / ".s.PGSQL.5432", database.hostname, database.port)
    variables = {
        "INGESTRO_REDIS_URL": redis_url,
        "INGESTRO_DATABASE_URL": f"postgresql://{database.username}@/ingestro?host={shared_dir}&port=5432",
        "INGESTRO_UPLOAD_DIR": str(shared_dir / "uploads"),
        "INGESTRO_BLOCK_MS": "200",
        "INGESTRO_VISIBILITY_TIMEOUT_S": "5",
        "INGESTRO_URL": f"http://{HOSTS['api']}:8000",
        **settings,
    }
    python = sys.executable

    def child(label: str, host: str, *argv: str) -> Child:
        return Child(label, network.exec_argv(host, *argv), variables, log_path=shared_dir / f"{label}.log")

    api = child("api", "api", python, "-m", "ingestro", "api", "--host", HOSTS["api"], "--port", "8000", "--insecure")
    consumers = [
        child(name, "work", python, "-m", "ingestro", "consume", name) for name in ("parser", "data", "errors", "jobs")
    ]
    children = [*redis, api, *consumers]
    try:
        for node in redis:
            node.start()
        for host in (node.label for node in redis):
            await _wait_for_redis(network, host, children)
        if prepare_redis is not None:
            await asyncio.to_thread(prepare_redis)
        for started in (api, *consumers):
            started.start()
        expected = write_sample_file(shared_dir / "contacts.csv", "csv", rows, seed=5)
        uploading = await asyncio.create_subprocess_exec(
            *network.exec_argv(
                "client", python, "-m", "ingestro", "upload", "--wait", str(shared_dir / "contacts.csv")
            ),
            env={**os.environ, **variables},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await _wait_for_rows(pool, expected.distinct // 10, children)
        network.set_link("work", "down")  # the consumers' host drops off the network for a while
        await asyncio.sleep(3)
        network.set_link("work", "up")
        output, _ = await asyncio.wait_for(uploading.communicate(), timeout=150)
        assert uploading.returncode == 0, output.decode() + "".join(c.output() for c in children)
        job = await pool.fetchrow("SELECT * FROM jobs")
        assert job is not None and job["status"] == "completed", dict(job or {})
        assert await pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
        assert await pool.fetchval("SELECT count(*) FROM validation_errors") == expected.invalid
        assert all(started.alive() for started in children), "".join(c.output() for c in children)
    finally:
        stop_all(children, grace_s=10)
        relay.close()
        await pool.close()


async def _wait_for_redis(network: Network, host: str, children: list[Child]) -> None:
    deadline = time.monotonic() + 20
    while "PONG" not in await asyncio.to_thread(_redis_cli, network, host, "PING"):
        if time.monotonic() > deadline:
            raise AssertionError(f"the Redis on {host} did not answer:\n" + "".join(c.output() for c in children))
        await asyncio.sleep(0.1)


async def _wait_for_rows(pool: asyncpg.Pool, rows: int, children: list[Child]) -> None:
    deadline = time.monotonic() + 90
    while await pool.fetchval("SELECT count(*) FROM contacts") < rows:
        if time.monotonic() > deadline:
            raise AssertionError("no rows arrived:\n" + "".join(c.output() for c in children))
        await asyncio.sleep(0.1)
