"""What every command group's parser shares: the help's width, subcommands that describe themselves, option types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from ingestro.config import Settings

#: Columns every line of `--help` fits in, whatever the terminal.
WIDTH = 100

#: What a command runs: the parsed arguments and the settings, read and checked once by `main`; the exit status.
Command = Callable[[argparse.Namespace, Settings], int]

if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # generic in typeshed only
    Subcommands = argparse._SubParsersAction


class Formatter(argparse.HelpFormatter):
    """argparse's formatter at WIDTH columns, whatever the terminal says."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=WIDTH, max_help_position=30)


class RawFormatter(argparse.RawDescriptionHelpFormatter):
    """WIDTH columns; the description and epilog are printed as written (the caller fits them)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=WIDTH, max_help_position=30)


def add_command(
    commands: Subcommands, name: str, summary: str, description: str = "", run: Command | None = None
) -> argparse.ArgumentParser:
    """A subcommand listed with ``summary``; its own ``--help`` starts with ``description`` (default: the summary).

    ``run`` is what it runs; without it, the command is a group of subcommands (add them with
    ``subcommands``), and given none of them it prints its help.
    """
    parser = commands.add_parser(
        name, help=summary, description=description or summary[0].upper() + summary[1:] + ".", formatter_class=Formatter
    )
    parser.set_defaults(run=run, parser=parser)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> Subcommands:
    """The subcommands of a command group, listed in its help as ACTION."""
    return parser.add_subparsers(title="actions", metavar="ACTION", dest="action")


def positive(text: str) -> int:
    """An argparse type: a whole number, at least 1."""
    return _whole(text, 1, None)


def non_negative(text: str) -> int:
    """An argparse type: a whole number, at least 0."""
    return _whole(text, 0, None)


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    return _whole(text, 0, 65535)


def _whole(text: str, minimum: int, maximum: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum or (maximum is not None and value > maximum):
        span = f"from {minimum} to {maximum}" if maximum is not None else f"from {minimum} up"
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number {span}")
    return value
