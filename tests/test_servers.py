"""The private redis-server and PostgreSQL processes: start, answer, keep data, run unprivileged."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from ingestro.devtools import servers
from ingestro.devtools.servers import PostgresServer, RedisServer, ServerError

pytestmark = pytest.mark.server

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root must switch users")


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A cluster directory that the unprivileged user can reach (unlike tmp_path as root), removed afterwards."""
    # The temporary directory itself: its parent is the world-searchable /tmp.
    with tempfile.TemporaryDirectory(prefix="ingestro-test-pg-") as tmp:
        yield Path(tmp)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other process listens on."""
    with socket.socket() as sock:
        sock.bind((servers.HOST, 0))
        sock.listen()
        yield sock.getsockname()[1]


async def fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def redis_get(url: str, key: str) -> bytes | None:
    with redis.Redis.from_url(url) as client:
        value: bytes | None = client.get(key)
        return value


def test_redis_answers(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.ping()
        assert client.info("server")["process_id"] == redis_server.pid
        assert client.config_get("appendonly") == {"appendonly": "yes"}


async def test_postgres_answers(postgres_server: PostgresServer) -> None:
    assert postgres_server.url == f"postgresql://ingestro@127.0.0.1:{postgres_server.port}/ingestro"
    assert await fetchval(postgres_server.url, "SELECT 1") == 1
    assert await fetchval(postgres_server.url, "SELECT current_database()") == "ingestro"
    assert await fetchval(postgres_server.url, "SHOW fsync") == "off"
    assert await fetchval(postgres_server.url, "SHOW max_connections") == "200"
    assert await fetchval(postgres_server.url, "SHOW server_encoding") == "UTF8"


def test_redis_restart_keeps_data_and_port(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        with redis.Redis.from_url(server.url) as client:
            client.set("survivor", b"yes")
        port, pid = server.port, server.pid
        server.restart()
        assert server.port == port
        assert server.pid != pid
        assert redis_get(server.url, "survivor") == b"yes"
    assert server.pid is None
    server.stop()  # idempotent


@pytest.mark.slow
async def test_postgres_restart_keeps_data_and_port(pg_dir: Path) -> None:
    with PostgresServer(pg_dir, durable=False) as server:
        await fetchval(server.url, "CREATE TABLE survivor AS SELECT 42 AS answer")
        port, pid = server.port, server.pid
        server.restart()
        assert server.port == port
        assert server.pid != pid
        assert await fetchval(server.url, "SELECT answer FROM survivor") == 42
    assert server.pid is None
    server.stop()  # idempotent


@pytest.mark.slow
async def test_killed_servers_start_again(tmp_path: Path, pg_dir: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis_srv, PostgresServer(pg_dir) as pg_srv:
        await fetchval(pg_srv.url, "CREATE TABLE committed AS SELECT 1 AS one")
        redis_srv.kill()
        pg_srv.kill()
        assert redis_srv.pid is None and pg_srv.pid is None
        redis_srv.start()
        pg_srv.start()  # crash recovery, with every killed backend gone
        with redis.Redis.from_url(redis_srv.url) as client:
            assert client.ping()
        assert await fetchval(pg_srv.url, "SELECT one FROM committed") == 1


@pytest.mark.slow
def test_a_killed_postgres_starts_again_while_its_backends_were_busy(pg_dir: Path) -> None:
    """Backends leave the postmaster's process group; a kill must still take them, or the
    restart finds the shared memory in use (the chaos test met this under load)."""
    import subprocess
    import time

    with PostgresServer(pg_dir, durable=False) as pg_srv:
        busy = [
            subprocess.Popen(
                ["psql", pg_srv.url, "-c", "SELECT count(*) FROM generate_series(1, 1000000000)"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            time.sleep(1)  # the queries are running
            pg_srv.kill()
            pg_srv.start()
        finally:
            for client in busy:
                client.kill()
                client.wait()


def test_start_failure_names_the_cause_and_leaves_nothing_running(tmp_path: Path, taken_port: int) -> None:
    server = RedisServer(tmp_path / "redis", port=taken_port)
    with pytest.raises(ServerError, match="Address already in use"):
        server.start()
    assert server.pid is None


def test_picked_port_taken_meanwhile_is_replaced(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter([taken_port, servers.free_port()])
    monkeypatch.setattr(servers, "free_port", lambda: next(ports))
    with RedisServer(tmp_path / "redis") as server:
        assert server.port != taken_port
        assert redis_get(server.url, "missing") is None


def postgres_uid() -> int:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
    raise AssertionError("no unprivileged user")


def proc_status(pid: int) -> dict[str, list[str]]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: rest.split() for key, _, rest in (line.partition(":") for line in status.splitlines())}


@as_root
def test_root_runs_postgres_unprivileged(postgres_server: PostgresServer) -> None:
    assert postgres_server.pid is not None
    status = proc_status(postgres_server.pid)
    uid = str(postgres_uid())
    assert status["Uid"] == [uid] * 4
    assert "0" not in status["Groups"]
    assert postgres_server.cluster_dir.stat().st_uid == int(uid)


@pytest.mark.slow
@as_root
async def test_cluster_moves_out_of_a_directory_the_user_cannot_reach(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    data_dir = private / "postgres"
    server = PostgresServer(data_dir, durable=False)
    try:
        with server:
            cluster = server.cluster_dir
            home = cluster.parent
            assert home.parent == Path("/var/tmp")
            assert home.name.startswith("ingestro-pg-")
            assert (data_dir / home.name).resolve() == home
            assert cluster.stat().st_uid == postgres_uid()
            await fetchval(server.url, "CREATE TABLE survivor AS SELECT 7 AS n")
        # A new server on the same data_dir finds the cluster through the link.
        with PostgresServer(data_dir, durable=False) as again:
            assert again.cluster_dir == cluster
            assert await fetchval(again.url, "SELECT n FROM survivor") == 7
        # Once data_dir is gone, the next fallback start removes the abandoned cluster.
        shutil.rmtree(data_dir)
        with PostgresServer(private / "other", durable=False):
            assert not home.exists()
    finally:
        for link in private.glob("*/ingestro-pg-*"):
            shutil.rmtree(link.resolve(), ignore_errors=True)
