"""The ``ingestro`` command: assembles each command group's parser, reads the settings once, runs the command."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from importlib import metadata

from ingestro import logs
from ingestro.cli import datasets, dlq, files, imports, keys, remote, reparse, replay, serve, streams
from ingestro.cli._parsers import WIDTH, RawFormatter
from ingestro.config import ENVIRONMENT, InvalidSetting, Settings

#: Each module adds its commands, in the order `ingestro --help` lists them.
_COMMAND_GROUPS = (serve, remote, imports, datasets, keys, dlq, streams, replay, reparse, files)
_NAME_COLUMN = 34


def _environment_help() -> str:
    """The settings table of ``ENVIRONMENT``, each meaning wrapped to the help's width."""
    lines = ["configuration (environment; each value is checked when a command starts):"]
    for name, (_attribute, default, meaning) in ENVIRONMENT.items():
        text = f"{meaning} (default: {default or 'unset'})"
        indent = " " * _NAME_COLUMN
        lines += textwrap.wrap(text, WIDTH, initial_indent=f"  {name:<{_NAME_COLUMN - 2}}", subsequent_indent=indent)
    return "\n".join(lines)


def _version() -> str:
    try:
        return metadata.version("ingestro")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingestro",
        description="Event-sourced ingestion of CSV and JSON files into PostgreSQL over Redis Streams.",
        formatter_class=RawFormatter,
        epilog=_environment_help(),
    )
    parser.add_argument("--version", action="version", version=f"ingestro {_version()}")
    parser.set_defaults(run=None, parser=parser)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for group in _COMMAND_GROUPS:
        group.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.run is None:  # `ingestro`, or a command group without its action: say what there is
        args.parser.print_help(sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except InvalidSetting as error:
        print(f"ingestro: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, human=True if args.command == "dev" else None)
    # httpx logs every request at INFO: noise in the output of the client commands (upload, jobs, errors).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.run(args, settings))
    except KeyboardInterrupt:
        return 130
    except (OSError, ConnectionError, subprocess.SubprocessError) as error:
        print(f"ingestro: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
