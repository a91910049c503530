"""``ingestro dev``: a whole stack on one machine, in real processes, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

from ingestro import config
from ingestro.database.schema import prepare_database
from ingestro.datasets import InvalidDeclaration
from ingestro.devtools.servers import PostgresServer, RedisClusterServers, RedisServer, ServerError, free_port
from ingestro.devtools.supervisor import Child, stop_all
from ingestro.services.consumer_groups import CONSUMER_NAMES

log = logging.getLogger("ingestro.devtools.dev")


def write_env(path: Path, values: dict[str, str]) -> None:
    """Write ``NAME=value`` lines other commands and shells can source."""
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: what it resolves to
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback


def run_dev(data_dir: Path, host: str, port: int, copies: int, redis_cluster: int = 0) -> int:
    """Start servers (unless given by environment), migrate, run the API and consumers until a signal.

    ``redis_cluster``: when not 0, the private Redis is a Redis Cluster of that many masters (at least 3), and the
    processes run with ``INGESTRO_REDIS_MODE=cluster``."""
    if not _is_loopback(host):
        raise SystemExit(
            f"ingestro dev: serves without API keys, so only on a loopback address, not {host!r};"
            " use `ingestro api` with keys to serve beyond this machine"
        )
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    servers: list[RedisServer | RedisClusterServers | PostgresServer] = []
    children: list[Child] = []
    try:
        # The settings its user gave go to every child; the servers' URLs are given only to use other servers.
        given = config.given()
        redis_url = given.get("INGESTRO_REDIS_URL")
        redis_mode = "cluster" if redis_cluster else given.get("INGESTRO_REDIS_MODE", "single")
        if redis_cluster and not redis_url:
            cluster = RedisClusterServers(data_dir / f"redis-cluster-{redis_cluster}", masters=redis_cluster)
            try:
                cluster.start()
            except ServerError as error:
                raise SystemExit(f"ingestro dev: {error}") from None
            servers.append(cluster)
            redis_url = cluster.url
        elif not redis_url:
            redis = RedisServer(data_dir / "redis")
            redis.start()
            servers.append(redis)
            redis_url = redis.url
        database_url = given.get("INGESTRO_DATABASE_URL")
        if not database_url:
            postgres = PostgresServer(data_dir / "postgres")
            postgres.start()
            servers.append(postgres)
            database_url = postgres.url
        upload_dir = given.get("INGESTRO_UPLOAD_DIR") or str(data_dir / "uploads")
        values = {
            "INGESTRO_REDIS_URL": redis_url,
            "INGESTRO_REDIS_MODE": redis_mode,
            "INGESTRO_DATABASE_URL": database_url,
            "INGESTRO_UPLOAD_DIR": upload_dir,
        }
        # Every consumer serves its own metrics (the API at /metrics), so each is scraped on its own.
        metrics_ports = {(name, slot): free_port() for name in CONSUMER_NAMES for slot in range(copies)}
        metrics_urls = [f"http://{host}:{p}/metrics" for p in (port, *metrics_ports.values())]
        write_env(data_dir / "env", values | {"INGESTRO_METRICS_URLS": ",".join(metrics_urls)})
        datasets_dir = given.get("INGESTRO_DATASETS_DIR")
        try:
            prepared = asyncio.run(prepare_database(database_url, Path(datasets_dir) if datasets_dir else None))
        except InvalidDeclaration as error:
            raise SystemExit(f"ingestro dev: {error}") from None
        log.info("migrations applied", extra={"count": len(prepared.migrations)})

        env = given | values
        command = [sys.executable, "-m", "ingestro"]
        # Development runs without API keys, which is why it serves on loopback only (see run_dev).
        children.append(Child("api", [*command, "api", "--host", host, "--port", str(port), "--insecure"], env))
        for name in CONSUMER_NAMES:
            for slot in range(copies):
                metrics = ["--metrics-host", host, "--metrics-port", str(metrics_ports[name, slot])]
                children.append(
                    Child(f"{name}-{slot}", [*command, "consume", name, "--slot", str(slot), *metrics], env)
                )
        for child in children:
            child.start()

        print(
            f"\nIngestro is running\n"
            f"  API        http://{host}:{port}   (try: curl -F file=@contacts.csv http://{host}:{port}/upload)\n"
            f"  Redis      {redis_url}{f'   (a {redis_cluster}-master cluster)' if redis_cluster else ''}\n"
            f"  PostgreSQL {database_url}\n"
            f"  uploads    {upload_dir}\n"
            f"  metrics    {len(metrics_urls)} endpoints (INGESTRO_METRICS_URLS in the env file)\n"
            f"  env file   {data_dir / 'env'}   (source it to join this stack)\n"
            f"Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping:
            time.sleep(0.5)
            for child in children:
                if not stopping and not child.alive():
                    log.warning("child exited; restarting it", extra={"child": child.label, "code": child.returncode})
                    time.sleep(1)
                    child.start()
        return 0
    finally:
        log.info("stopping")
        stop_all(children, signal.SIGTERM, grace_s=20)
        for server in reversed(servers):
            server.stop()
        log.info("stopped")
