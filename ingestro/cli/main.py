"""The ``ingestro`` command: run the stack for development, or each part on its own."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ingestro import logs
from ingestro.config import ENVIRONMENT, Settings
from ingestro.streams.names import CONSUMER_NAMES

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("ingestro")

_ENV_HELP = "\n".join(
    f"  {name:<32} {meaning} (default: {default or 'unset'})" for name, (_, default, meaning) in ENVIRONMENT.items()
)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as error:
        raise SystemExit(f"ingestro: {error}") from None


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


# --------------------------------------------------------------------- commands


def cmd_migrate(_args: argparse.Namespace) -> int:
    from ingestro.database.schema import prepare_database
    from ingestro.datasets import InvalidDeclaration

    settings = _settings()
    try:
        datasets_dir = Path(settings.datasets_dir) if settings.datasets_dir else None
        prepared = asyncio.run(prepare_database(settings.database_url, datasets_dir))
    except InvalidDeclaration as error:
        print(f"ingestro migrate: {error}", file=sys.stderr)
        return 1
    applied = prepared.migrations
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    for declared in prepared.datasets:
        print(f"dataset {declared.dataset.name}: {declared.outcome} (version {declared.dataset.version})")
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from ingestro.api.app import create_app

    settings = _settings()
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
    uvicorn.run(app, host=args.host, port=args.port, http="httptools", log_config=None, access_log=False)
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    from ingestro.processes import run_consumer

    settings = _settings()
    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=args.metrics_host)  # a daemon thread: it ends with the process
        log.info("serving metrics", extra={"group": args.name, "host": args.metrics_host, "port": metrics_port})

    async def main() -> None:
        stop = asyncio.Event()
        _on_signals(stop)
        await run_consumer(args.name, settings, args.slot, stop)

    log.info("consumer starting", extra={"group": args.name, "slot": args.slot})
    _collect_less_often()
    asyncio.run(main())
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


def cmd_dlq(args: argparse.Namespace) -> int:
    from ingestro.cli import dlq as dlq_command

    problem = dlq_command.usage_error(args.action, args.id, args.all)
    if problem:
        raise SystemExit(f"ingestro dlq: {problem}")
    return asyncio.run(dlq_command.run(_settings().redis_url, args.action, args.id, args.all))


def cmd_keys(args: argparse.Namespace) -> int:
    from ingestro.cli import keys as keys_command

    if args.action in ("create", "revoke") and not args.name_or_id:
        raise SystemExit(f"ingestro keys {args.action}: give the key's {'name' if args.action == 'create' else 'id'}")
    return asyncio.run(
        keys_command.run(_settings().database_url, args.action, args.name_or_id, args.scope, args.tenant)
    )


def cmd_streams(_args: argparse.Namespace) -> int:
    from ingestro.cli import streams as streams_command

    return asyncio.run(streams_command.run(_settings().redis_url))


def cmd_replay(args: argparse.Namespace) -> int:
    from ingestro.cli import replay as replay_command

    return asyncio.run(replay_command.run(_settings(), args.projection, args.allow_loss))


def cmd_reparse(args: argparse.Namespace) -> int:
    from ingestro.cli import reparse as reparse_command

    if bool(args.job_ids) == args.all:
        raise SystemExit("ingestro reparse: give job ids or --all")
    return asyncio.run(reparse_command.run(_settings(), args.job_ids, args.all))


def cmd_files(args: argparse.Namespace) -> int:
    from ingestro.cli import files as files_command

    if (args.action == "delete") != bool(args.job_id) or (args.force and args.action != "delete"):
        raise SystemExit("ingestro files: `list`, or `delete JOB_ID [--force]`")
    return asyncio.run(files_command.run(_settings(), args.action, args.job_id, args.force))


def _call_api(args: argparse.Namespace, command: str, work: Callable[[httpx.AsyncClient], Awaitable[int]]) -> int:
    """Run ``work`` with a client of the API at ``args.url``, the key from INGESTRO_API_KEY."""
    import httpx

    token = os.environ.get("INGESTRO_API_KEY", "")
    headers = {"authorization": f"Bearer {token}"} if token else {}

    async def main() -> int:
        timeout = httpx.Timeout(30, write=None)  # a large file's body may take long to send
        async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=timeout) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except httpx.HTTPError as error:
        raise SystemExit(f"ingestro {command}: {args.url}: {error}") from None


def cmd_upload(args: argparse.Namespace) -> int:
    from ingestro.cli.client import upload_files

    paths = [Path(name) for name in args.files]
    return _call_api(
        args, "upload", lambda client: upload_files(client, paths, args.dataset, args.wait, sys.stdout, sys.stderr)
    )


def cmd_jobs(args: argparse.Namespace) -> int:
    from ingestro.cli.client import list_jobs

    return _call_api(args, "jobs", lambda client: list_jobs(client, args.limit, sys.stdout))


def cmd_errors(args: argparse.Namespace) -> int:
    from ingestro.cli.client import show_errors

    return _call_api(args, "errors", lambda client: show_errors(client, args.job_id, args.csv, sys.stdout))


def cmd_dev(args: argparse.Namespace) -> int:
    from ingestro.devtools.dev import run_dev

    return run_dev(
        data_dir=Path(args.data_dir),
        host=args.host,
        port=args.port,
        copies=args.copies,
    )


# ----------------------------------------------------------------------- parser


def _url_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--url",
        default=os.environ.get("INGESTRO_URL", "http://127.0.0.1:8000"),
        help="the API (default: $INGESTRO_URL or %(default)s); the key is read from INGESTRO_API_KEY",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingestro",
        description="Event-sourced ingestion of CSV and JSON files into PostgreSQL over Redis Streams.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="configuration (environment):\n" + _ENV_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev",
        help="run everything locally: private Redis and PostgreSQL, migrations, the API and every consumer",
        description=(
            "Start a private redis-server and PostgreSQL under --data-dir (loopback, free ports), apply the "
            "migrations, then run the API and every consumer until Ctrl-C. The servers' URLs are printed and "
            "written to DATA_DIR/env. When INGESTRO_REDIS_URL / INGESTRO_DATABASE_URL are set, those servers "
            "are used instead of private ones."
        ),
    )
    dev.add_argument(
        "--data-dir", default=".ingestro", help="where servers' data, uploads and env live (default: %(default)s)"
    )
    dev.add_argument("--host", default="127.0.0.1", help="API address (default: %(default)s)")
    dev.add_argument("--port", type=int, default=8000, help="API port (default: %(default)s)")
    dev.add_argument("--copies", type=int, default=1, help="processes of each consumer (default: %(default)s)")
    dev.set_defaults(run=cmd_dev)

    migrate = commands.add_parser(
        "migrate",
        help="apply the SQL migrations in db/ not yet applied, then declare the datasets"
        " (built-in and INGESTRO_DATASETS_DIR), creating or altering their tables",
    )
    migrate.set_defaults(run=cmd_migrate)

    api = commands.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    api.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    api.add_argument(
        "--insecure",
        action="store_true",
        help="serve without API keys: every caller is an admin (without it, the API refuses to start with no key)",
    )
    api.set_defaults(run=cmd_api)

    keys = commands.add_parser(
        "keys",
        help="create, list or revoke API keys",
        description=(
            "API keys are sent as `Authorization: Bearer <token>`. Scopes: `upload` uploads and reads the jobs it "
            "uploaded; `read` reads its tenant's jobs and errors (and the data, for the default tenant); `admin` "
            "may do everything. `create` prints the token once; only its SHA-256 is stored."
        ),
    )
    keys.add_argument("action", choices=("create", "list", "revoke"), help="what to do")
    keys.add_argument("name_or_id", nargs="?", metavar="NAME|ID", help="create: the key's name; revoke: its id")
    keys.add_argument("--scope", choices=("upload", "read", "admin"), default="upload", help="(default: %(default)s)")
    keys.add_argument("--tenant", default="default", help="the tenant whose jobs the key sees (default: %(default)s)")
    keys.set_defaults(run=cmd_keys)

    upload = commands.add_parser(
        "upload",
        help="upload files to a running API (key from $INGESTRO_API_KEY)",
        description=(
            "Send each file to the API at --url, printing its job id; with --wait, follow the jobs to their end "
            "(live, from GET /jobs/{id}/events), print a summary table, and exit 1 when any failed (or any upload "
            "was refused). Progress (bytes sent, then each job's counts) goes to stderr: a bar redrawn in place on "
            "a terminal, a few plain lines otherwise. The API key is read "
            "from INGESTRO_API_KEY only, never an option, so that it does not show in process listings."
        ),
    )
    upload.add_argument("files", nargs="+", metavar="FILE", help="CSV, JSON or NDJSON files, gzipped or not")
    upload.add_argument("--dataset", default="contacts", help="(default: %(default)s)")
    upload.add_argument("--wait", action="store_true", help="wait for the jobs to end and summarize them")
    _url_option(upload)
    upload.set_defaults(run=cmd_upload)

    jobs = commands.add_parser("jobs", help="print the newest jobs of a running API as a table")
    jobs.add_argument("--limit", type=int, default=20, help="how many (default: %(default)s)")
    _url_option(jobs)
    jobs.set_defaults(run=cmd_jobs)

    errors = commands.add_parser("errors", help="print a job's rejected rows: every field error, or --csv")
    errors.add_argument("job_id", metavar="JOB", help="the job id")
    errors.add_argument("--csv", action="store_true", help="the API's CSV export (formula-safe) instead of a table")
    _url_option(errors)
    errors.set_defaults(run=cmd_errors)

    consume = commands.add_parser("consume", help="run one consumer process")
    consume.add_argument("name", choices=CONSUMER_NAMES, help="which consumer")
    consume.add_argument(
        "--slot",
        type=int,
        default=int(os.environ.get("INGESTRO_CONSUMER_SLOT", "0")),
        help="process slot; the consumer is named HOSTNAME-SLOT unless INGESTRO_CONSUMER_NAME is set "
        "(default: $INGESTRO_CONSUMER_SLOT or 0)",
    )
    consume.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port (default: $INGESTRO_METRICS_PORT; 0 or unset: none)",
    )
    # All interfaces by default: Prometheus scrapes a consumer from another host or container.
    consume.add_argument(
        "--metrics-host",
        default="0.0.0.0",  # noqa: S104
        help="address to serve metrics on (default: %(default)s)",
    )
    consume.set_defaults(run=cmd_consume)

    dlq = commands.add_parser(
        "dlq",
        help="list, show, redrive or purge dead-lettered entries",
        description=(
            "Entries a consumer failed INGESTRO_MAX_DELIVERIES times wait in the dead-letter stream. `redrive` "
            "appends an entry to its source stream again (every group of that stream sees it; the projections "
            "ignore what they applied already), then deletes the dead letter. `purge` deletes it for good."
        ),
    )
    dlq.add_argument("action", choices=("list", "show", "redrive", "purge"), help="what to do")
    dlq.add_argument("id", nargs="?", help="a dead letter's id, as `ingestro dlq list` shows it")
    dlq.add_argument("--all", action="store_true", help="redrive or purge every dead letter there is now")
    dlq.set_defaults(run=cmd_dlq)

    streams = commands.add_parser(
        "streams",
        help="show each stream's length, memory, first and last entry, and where each consumer group stands",
        description=(
            "Per stream: length, memory (MEMORY USAGE), first and last entry id. Per consumer group reading it: "
            "lag (entries not yet delivered), pending (delivered, not acked), idle time of the oldest pending "
            "entry, consumers."
        ),
    )
    streams.set_defaults(run=cmd_streams)

    replay = commands.add_parser(
        "replay",
        help="rebuild a projection's tables from the retained stream events and swap them in",
        description=(
            "Rebuild into shadow tables with the projection's own code, then, under a short lock of the live tables, "
            "catch up to the stream head and swap them in atomically; live ingestion goes on. Refused when the live "
            "tables hold batches whose events retention trimmed (run `ingestro reparse` first). Progress on stderr."
        ),
    )
    replay.add_argument("projection", choices=("data", "errors", "jobs", "all"), help="which projection (all: each)")
    replay.add_argument(
        "--allow-loss", action="store_true", help="swap even when trimmed events leave batches or jobs out"
    )
    replay.set_defaults(run=cmd_replay)

    reparse = commands.add_parser(
        "reparse",
        help="parse jobs' stored files again and re-emit their events (same job ids, same batches)",
        description=(
            "Regenerates the events of jobs whose events retention trimmed, while their files are kept; the live "
            "projections change nothing, a replay can then rebuild from them. INGESTRO_BATCH_SIZE must be the one "
            "the files were parsed with (checked). With job ids, nothing is done when one cannot be reparsed."
        ),
    )
    reparse.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="the jobs")
    reparse.add_argument("--all", action="store_true", help="every job whose file is stored")
    reparse.set_defaults(run=cmd_reparse)

    files = commands.add_parser(
        "files",
        help="list uploaded files, or delete one no longer needed",
        description=(
            "A file is needed while its job is not finished, and is the only source to replay its job from once its "
            "events were trimmed from the streams: deleting it is refused then (the latter unless --force). "
            "INGESTRO_FILE_RETENTION_DAYS deletes finished jobs' files after that many days."
        ),
    )
    files.add_argument("action", choices=("list", "delete"), help="what to do")
    files.add_argument("job_id", nargs="?", metavar="JOB_ID", help="delete: the job whose file goes")
    files.add_argument("--force", action="store_true", help="delete even when its events are no longer retained")
    files.set_defaults(run=cmd_files)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(os.environ.get("INGESTRO_LOG_LEVEL", "INFO"), human=True if args.command == "dev" else None)
    # httpx logs every request at INFO: noise in the output of the client commands (upload, jobs, errors).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except (OSError, ConnectionError, subprocess.SubprocessError) as error:
        print(f"ingestro: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
