"""``ingestro upload|jobs|errors``: the commands that call a running API (the client itself: client.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ingestro.cli._parsers import Subcommands, add_command, positive
from ingestro.config import Settings

if TYPE_CHECKING:
    import httpx


def add_parser(commands: Subcommands) -> None:
    upload = add_command(
        commands,
        "upload",
        "upload files to a running API (key from $INGESTRO_API_KEY)",
        "Send each file to the API at --url, printing its job id; with --wait, follow the jobs to their end "
        "(live, from GET /jobs/{id}/events), print a summary table, and exit 1 when any failed (or any upload "
        "was refused). Progress (bytes sent, then each job's counts) goes to stderr: a bar redrawn in place on "
        "a terminal, a few plain lines otherwise. The API key is read from INGESTRO_API_KEY only, never an "
        "option, so that it does not show in process listings.",
        _upload,
    )
    upload.add_argument(
        "files", nargs="+", metavar="FILE", help="CSV, JSON or NDJSON files (gzipped or not), XLSX or Parquet files"
    )
    upload.add_argument("--dataset", default="contacts", help="(default: %(default)s)")
    upload.add_argument("--sheet", help="the XLSX sheet to read, by name (default: each workbook's first sheet)")
    upload.add_argument("--wait", action="store_true", help="wait for the jobs to end and summarize them")
    upload.add_argument(
        "--map",
        action="append",
        type=column_mapping,
        default=[],
        metavar="COLUMN=FIELD",
        help="read the file's column COLUMN (a header column or JSON key) as the dataset's FIELD; COLUMN= ignores it. "
        "Repeat for each column; sent as the API's ?map= and recorded in the job",
    )
    url_option(upload)

    jobs = add_command(commands, "jobs", "print the newest jobs of a running API as a table", run=_jobs)
    jobs.add_argument("--limit", type=positive, default=20, help="how many (default: %(default)s)")
    url_option(jobs)

    errors = add_command(commands, "errors", "print a job's rejected rows: every field error, or --csv", run=_errors)
    errors.add_argument("job_id", metavar="JOB", help="the job id")
    errors.add_argument("--csv", action="store_true", help="the API's CSV export (formula-safe) instead of a table")
    url_option(errors)


def url_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--url",
        help="the API (default: $INGESTRO_URL, or http://127.0.0.1:8000); the key is read from INGESTRO_API_KEY",
    )


def _upload(args: argparse.Namespace, settings: Settings) -> int:
    from ingestro.cli.client import upload_files

    paths = [Path(name) for name in args.files]
    column_map: dict[str, str | None] = {}
    for column, field in args.map:
        if column in column_map:
            args.parser.error(f"--map gives column {column!r} twice")
        column_map[column] = field
    return call_api(
        args,
        settings,
        "upload",
        lambda client: upload_files(
            client,
            paths,
            args.dataset,
            args.wait,
            sys.stdout,
            sys.stderr,
            sheet=args.sheet,
            column_map=column_map or None,
        ),
    )


def column_mapping(text: str) -> tuple[str, str | None]:
    """An argparse type: ``COLUMN=FIELD`` (split at the last ``=``: a column may hold one), ``COLUMN=`` to ignore."""
    column, equals, field = text.rpartition("=")
    if not equals or not column.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not COLUMN=FIELD (or COLUMN= to ignore the column)")
    return column, field.strip() or None


def _jobs(args: argparse.Namespace, settings: Settings) -> int:
    from ingestro.cli.client import list_jobs

    return call_api(args, settings, "jobs", lambda client: list_jobs(client, args.limit, sys.stdout))


def _errors(args: argparse.Namespace, settings: Settings) -> int:
    from ingestro.cli.client import show_errors

    return call_api(args, settings, "errors", lambda client: show_errors(client, args.job_id, args.csv, sys.stdout))


def call_api(
    args: argparse.Namespace, settings: Settings, command: str, work: Callable[[httpx.AsyncClient], Awaitable[int]]
) -> int:
    """Run ``work`` with a client of the API at ``--url`` (or INGESTRO_URL), the key from INGESTRO_API_KEY."""
    import httpx

    url = args.url or settings.api_url
    headers = {"authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}

    async def main() -> int:
        timeout = httpx.Timeout(30, write=None)  # a large file's body may take long to send
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except httpx.HTTPError as error:
        raise SystemExit(f"ingestro {command}: {url}: {error}") from None
