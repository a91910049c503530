"""``ingestro dev|migrate|api|consume``: run the whole system locally, or one of its parts."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
from pathlib import Path

from ingestro.cli._parsers import Subcommands, add_command, non_negative, port, positive
from ingestro.cli.choices import CONSUMERS
from ingestro.config import Settings

log = logging.getLogger("ingestro")


def add_parser(commands: Subcommands) -> None:
    dev = add_command(
        commands,
        "dev",
        "run everything locally: private Redis and PostgreSQL, migrations, the API and every consumer",
        "Start a private redis-server and PostgreSQL under --data-dir (loopback, free ports), apply the "
        "migrations, then run the API and every consumer until Ctrl-C. The servers' URLs are printed and "
        "written to DATA_DIR/env. When INGESTRO_REDIS_URL / INGESTRO_DATABASE_URL are set, those servers "
        "are used instead of private ones.",
        _dev,
    )
    dev.add_argument(
        "--data-dir", default=".ingestro", help="where servers' data, uploads and env live (default: %(default)s)"
    )
    dev.add_argument("--host", default="127.0.0.1", help="API address, a loopback one (default: %(default)s)")
    dev.add_argument("--port", type=port, default=8000, help="API port (default: %(default)s)")
    dev.add_argument("--copies", type=positive, default=1, help="processes of each consumer (default: %(default)s)")
    dev.add_argument(
        "--redis-cluster",
        type=positive,
        default=0,
        metavar="N",
        help="run on a private Redis Cluster of N masters (at least 3) instead of one redis-server,"
        " with INGESTRO_REDIS_MODE=cluster",
    )

    add_command(
        commands,
        "migrate",
        "apply the SQL migrations not yet applied, then declare the datasets",
        "Apply the SQL migrations not yet applied, then declare the datasets (the built-in ones and those in "
        "INGESTRO_DATASETS_DIR), creating or altering their tables. Safe to run twice, or at once.",
        _migrate,
    )

    api = add_command(
        commands,
        "api",
        "serve the HTTP API",
        "Serve the HTTP API. It refuses to start while there is no active API key (`ingestro keys create`), "
        "unless given --insecure.",
        _api,
    )
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    api.add_argument("--port", type=port, default=8000, help="port to bind (default: %(default)s)")
    api.add_argument(
        "--insecure",
        action="store_true",
        help="serve without API keys: every caller is an admin (without it, the API refuses to start with no key)",
    )

    consume = add_command(
        commands,
        "consume",
        "run one consumer process",
        "Run one process of a consumer group until SIGTERM or Ctrl-C; run more of them to scale it.",
        _consume,
    )
    consume.add_argument("name", choices=CONSUMERS, help="which consumer")
    consume.add_argument(
        "--slot",
        type=non_negative,
        help="process slot; the consumer is named HOSTNAME-SLOT unless INGESTRO_CONSUMER_NAME is set "
        "(default: $INGESTRO_CONSUMER_SLOT, or 0)",
    )
    consume.add_argument(
        "--metrics-port",
        type=port,
        help="serve Prometheus metrics on this port (default: $INGESTRO_METRICS_PORT; 0 or unset: none)",
    )
    # All interfaces by default: Prometheus scrapes a consumer from another host or container.
    consume.add_argument(
        "--metrics-host",
        default="0.0.0.0",  # noqa: S104
        help="address to serve metrics on (default: %(default)s)",
    )


def _dev(args: argparse.Namespace, _settings: Settings) -> int:
    from ingestro.devtools.dev import run_dev

    if args.redis_cluster and args.redis_cluster < 3:
        raise SystemExit(f"ingestro dev: --redis-cluster needs at least 3 masters, not {args.redis_cluster}")
    return run_dev(
        data_dir=Path(args.data_dir),
        host=args.host,
        port=args.port,
        copies=args.copies,
        redis_cluster=args.redis_cluster,
    )


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from ingestro.database.schema import prepare_database
    from ingestro.datasets import InvalidDeclaration

    try:
        datasets_dir = Path(settings.datasets_dir) if settings.datasets_dir else None
        prepared = asyncio.run(prepare_database(settings.database_url, datasets_dir))
    except InvalidDeclaration as error:
        raise SystemExit(f"ingestro migrate: {error}") from None
    applied = prepared.migrations
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    for declared in prepared.datasets:
        print(f"dataset {declared.dataset.name}: {declared.outcome} (version {declared.dataset.version})")
    return 0


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from ingestro.api.app import create_app

    if not args.insecure:
        from ingestro.database import create_pool, keys

        async def active_keys() -> int:
            pool = await create_pool(settings.database_url, min_size=1, max_size=1)
            try:
                return await keys.active_count(pool)
            finally:
                await pool.close()

        if not asyncio.run(active_keys()):
            raise SystemExit(
                "ingestro api: there is no API key, so nobody could call the API. Create one with "
                "`ingestro keys create NAME --scope admin`, or pass --insecure to serve without keys"
            )
    app = create_app(settings, insecure=args.insecure)
    # httptools: with h11, a malformed body arriving while the app answered logged a traceback.
    uvicorn.run(app, host=args.host, port=args.port, http="httptools", log_config=None, access_log=False)
    return 0


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    from ingestro.processes import run_consumer

    slot = settings.consumer_slot if args.slot is None else args.slot
    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=args.metrics_host)  # a daemon thread: it ends with the process
        log.info("serving metrics", extra={"group": args.name, "host": args.metrics_host, "port": metrics_port})

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_consumer(args.name, settings, slot, stop)

    from ingestro.streams.layout import LegacyStreams

    log.info("consumer starting", extra={"group": args.name, "slot": slot})
    _collect_less_often()
    try:
        asyncio.run(main())
    except LegacyStreams as refused:
        raise SystemExit(f"ingestro consume: {refused}") from None
    return 0


#: Allocations between two collections of the youngest generation in a consumer (CPython's default is 700).
_CONSUMER_GC_THRESHOLD = 10_000


def _collect_less_often() -> None:
    """Run the cycle collector less often in a consumer process: its garbage is freed by reference counting.

    A batch's rows (a few containers each) live until the batch is published or applied: at the
    default threshold the collector ran about twice per batch, scanning batches that are not
    garbage (about 5% of the parser's CPU, 0.5 µs per row in the data projection). What the
    process holds from startup is frozen out of every collection.
    """
    gc.freeze()
    gc.set_threshold(_CONSUMER_GC_THRESHOLD, *gc.get_threshold()[1:])
