"""``ingestro datasets infer FILE``: a draft declaration, as TOML, inferred from the start of a file.

It reads only the local file (at most ``MAX_SAMPLE_BYTES`` of it, decompressed for a ``.gz``) and
calls nothing: the inference is ``POST /datasets/infer``'s own (``ingestro.formats.drafts``). Declare
the reviewed draft with ``PUT /datasets/{name}`` (an admin key).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import zlib
from pathlib import Path
from typing import TextIO

import orjson

from ingestro.cli._parsers import Subcommands, add_command, subcommands
from ingestro.config import Settings
from ingestro.datasets.declarations import NAME
from ingestro.datasets.inference import field_name
from ingestro.formats.csv_rows import DELIMITERS
from ingestro.formats.decoding import UnusableEncoding, stream_encoding
from ingestro.formats.drafts import MAX_SAMPLE_BYTES, draft_of_sample
from ingestro.formats.readers import FORMATS
from ingestro.formats.sample import UnreadableSample


def add_parser(commands: Subcommands) -> None:
    group = add_command(commands, "datasets", "work with dataset declarations")
    actions = subcommands(group)
    infer = add_command(
        actions,
        "infer",
        "print a draft declaration (TOML) inferred from the start of a file",
        "Read the first MiB of FILE (CSV, JSON array or NDJSON; a .gz is decompressed) and print a draft dataset "
        "declaration as TOML: each column's type, whether it is required, date formats, candidate keys, as "
        "POST /datasets/infer does. Review it, then declare it with PUT /datasets/{name} (an admin key). "
        "Nothing is sent anywhere.",
        _infer,
    )
    infer.add_argument("file", metavar="FILE", type=Path, help="the file to sample")
    infer.add_argument("--name", help="the dataset's name (default: made from the file's name)")
    infer.add_argument("--format", choices=FORMATS, help="(default: the file's extension)")
    infer.add_argument("--delimiter", choices=DELIMITERS, help="the CSV delimiter (default: sniffed)")
    infer.add_argument("--encoding", help="the text encoding (default: UTF-8; a byte-order mark wins)")
    infer.add_argument("--json", action="store_true", help="print the whole draft as JSON instead of TOML")


def _infer(args: argparse.Namespace, _settings: Settings) -> int:
    return infer(args.file, args.name, args.format, args.delimiter, args.encoding, as_json=args.json)


def infer(
    path: Path,
    name: str | None = None,
    file_format: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    *,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the draft of ``path`` to ``out`` (stdout); 1 with one line on ``err`` (stderr) when it cannot be made,
    else 0."""
    out, err = out or sys.stdout, err or sys.stderr

    def refuse(reason: str) -> int:
        print(f"ingestro datasets infer: {path}: {reason}", file=err)
        return 1

    # Imported here: the API's modules (starlette, multipart) are not what the other commands need loaded.
    from ingestro.api.upload import detect_format
    from ingestro.api.upload_options import is_gzip

    compressed = is_gzip(path.name, None)
    file_format = file_format or detect_format(path.name, None)
    if file_format is None:
        return refuse("cannot tell its format: name it .csv, .json or .ndjson, or pass --format")
    if name is None:
        stem = path.name.split(".")[0]
        name = field_name(stem, 0) if stem else "new_dataset"
    elif not NAME.fullmatch(name):
        return refuse("--name must be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63)")
    if encoding is not None:
        try:
            encoding = stream_encoding(encoding)
        except UnusableEncoding as unusable:
            return refuse(str(unusable))
    try:
        opener = gzip.open if compressed else open
        with opener(path, "rb") as file:
            data = file.read(MAX_SAMPLE_BYTES)
    except (OSError, EOFError, zlib.error) as error:
        return refuse(error.strerror or str(error) if isinstance(error, OSError) else f"not gzip: {error}")
    if not data.strip():
        return refuse("the file is empty")
    try:
        draft = draft_of_sample(data, name, file_format, delimiter, encoding, path.name)
    except UnreadableSample as error:
        return refuse(str(error))
    print(orjson.dumps(draft, option=orjson.OPT_INDENT_2).decode() if as_json else draft["toml"], file=out, end="")
    if as_json:
        print(file=out)
    return 0
