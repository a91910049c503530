"""The `ingestro` command says what it is: a version, a help for every command, nested subcommands."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata

import pytest

from ingestro.cli import dlq, files, keys
from ingestro.cli._parsers import WIDTH
from ingestro.cli.main import build_parser, main


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and subcommand, depth first, with the words that name it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


ALL = list(commands(build_parser()))


def test_the_walk_finds_the_nested_commands() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert {"keys create", "keys list", "keys revoke", "dlq list", "dlq show", "dlq redrive", "dlq purge"} <= names
    assert {"files list", "files delete", "dev", "migrate", "api", "consume", "upload", "streams"} <= names


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[" ".join(path) or "ingestro" for path, _ in ALL])
def test_every_help_has_a_description_and_fits_the_width(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    assert parser.description, f"`ingestro {' '.join(path)} --help` has no description"
    text = parser.format_help()
    too_long = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_long, too_long


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"ingestro {metadata.version('ingestro')}\n"


@pytest.mark.parametrize("argv", [[], ["keys"], ["dlq"], ["files"]])
def test_a_command_without_what_to_do_prints_its_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: ingestro {' '.join(argv)}".rstrip())
    assert "ACTION" in err or "COMMAND" in err


def test_bare_ingestro_as_a_process_prints_the_help_and_no_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "ingestro"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "commands:" in result.stderr and "Traceback" not in result.stderr


def test_keys_subcommands() -> None:
    args = build_parser().parse_args(["keys", "create", "ci", "--scope", "read", "--tenant", "acme"])
    assert (args.run.__module__, args.name, args.scope, args.tenant) == (keys.__name__, "ci", "read", "acme")
    assert build_parser().parse_args(["keys", "revoke", "3f9c"]).key_id == "3f9c"
    assert build_parser().parse_args(["keys", "list"]).action == "list"


def test_dlq_subcommands() -> None:
    parse = build_parser().parse_args
    assert (parse(["dlq", "show", "1-0"]).id, parse(["dlq", "list"]).action) == ("1-0", "list")
    redrive = parse(["dlq", "redrive", "--all"])
    assert (redrive.run.__module__, redrive.action, redrive.id, redrive.all) == (dlq.__name__, "redrive", None, True)
    purge = parse(["dlq", "purge", "1-0"])
    assert (purge.action, purge.id, purge.all) == ("purge", "1-0", False)


def test_files_subcommands() -> None:
    delete = build_parser().parse_args(["files", "delete", "J", "--force"])
    assert (delete.run.__module__, delete.action, delete.job_id, delete.force) == (files.__name__, "delete", "J", True)
    assert build_parser().parse_args(["files", "list"]).action == "list"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["dlq", "redrive"], "one of the arguments ID --all is required"),
        (["dlq", "purge", "1-0", "--all"], "not allowed with argument ID"),
        (["dlq", "show"], "the following arguments are required: ID"),
        (["dlq", "list", "1-0"], "unrecognized arguments: 1-0"),
        (["keys", "create"], "the following arguments are required: NAME"),
        (["keys", "create", "x", "--scope", "root"], "invalid choice: 'root'"),
        (["files", "list", "--force"], "unrecognized arguments: --force"),
        (["files", "delete"], "the following arguments are required: JOB_ID"),
        (["dev", "--copies", "0"], "'0' is not a whole number from 1 up"),
        (["api", "--port", "70000"], "'70000' is not a whole number from 0 to 65535"),
    ],
)
def test_a_wrong_command_is_a_usage_error_saying_what_is_wrong(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
