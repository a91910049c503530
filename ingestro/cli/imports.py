"""``ingestro import``: ask a running API to pull files from URLs or S3 (``POST /imports``), and follow them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from ingestro.cli._parsers import Subcommands, add_command
from ingestro.cli.remote import call_api, url_option
from ingestro.config import Settings

if TYPE_CHECKING:
    import httpx


def add_parser(commands: Subcommands) -> None:
    command = add_command(
        commands,
        "import",
        "pull files from http(s):// or s3:// URLs into a running API (key from $INGESTRO_API_KEY)",
        "Ask the API at --url to pull each source (POST /imports), printing its job id; with --wait, follow "
        "the jobs to their end, print a summary table, and exit 1 when any failed (or any source was refused). "
        "The API's fetcher reaches only public addresses, and those of INGESTRO_IMPORT_ALLOW on the API's side.",
        _import,
    )
    command.add_argument("sources", nargs="+", metavar="URL", help="https://… or s3://bucket/key")
    command.add_argument("--dataset", default="contacts", help="(default: %(default)s)")
    command.add_argument(
        "--format", choices=("csv", "json", "ndjson"), help="the files' format (default: told by each URL's name)"
    )
    command.add_argument("--wait", action="store_true", help="wait for the jobs to end and summarize them")
    url_option(command)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    return call_api(
        args,
        settings,
        "import",
        lambda client: import_sources(
            client, args.sources, args.dataset, args.format, args.wait, sys.stdout, sys.stderr
        ),
    )


async def import_sources(
    client: httpx.AsyncClient,
    sources: Sequence[str],
    dataset: str,
    file_format: str | None,
    wait: bool,
    out: TextIO,
    err: TextIO | None = None,
) -> int:
    """Request each import; 1 when any was refused or (with ``wait``) any job failed, else 0."""
    from ingestro.cli.client import refusal, wait_and_summarize

    code = 0
    accepted: list[tuple[str, str]] = []
    params = {"dataset": dataset, **({"format": file_format} if file_format else {})}
    for source in sources:
        response = await client.post("/imports", json={"source": source}, params=params)
        refused = refusal(response)
        if refused is not None:
            print(f"{source}: refused ({refused})", file=out)
            code = 1
            continue
        job_id = response.json()["job_id"]
        print(f"{source}: job {job_id}", file=out)
        accepted.append((source, job_id))
    if wait and accepted:
        code = max(code, await wait_and_summarize(client, accepted, out, err))
    return code
