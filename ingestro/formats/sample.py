"""The first rows of a file, as written: what a draft declaration is inferred from.

Unlike ``ingestro.formats.readers``, which reads a stored file into a dataset's fields,
this reads a small sample held in memory into its own columns (the CSV header, or the
keys of the JSON objects in the order first seen). A sample is usually the start of a
larger file, cut anywhere: a row that does not parse (the last one cut short, a CSV
row with another field count, a JSON value that is not an object) is skipped and
counted, never a failure. Decoding is the readers' own: a byte-order mark, else the
declared encoding, else UTF-8, undecodable bytes replaced.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import attrs

from ingestro.formats.csv_rows import sniff_delimiter
from ingestro.formats.decoding import detect
from ingestro.formats.json_rows import decode
from ingestro.formats.source import clean_text

#: Columns a sample may have (a header past it is cut, and said so).
MAX_SAMPLE_COLUMNS = 1000


@attrs.frozen
class Sample:
    #: Column names as written (cleaned for display: no NUL, at most 200 characters).
    columns: tuple[str, ...]
    #: Each row: column name -> value as read (CSV text; JSON values as decoded).
    rows: tuple[dict[str, Any], ...]
    #: Rows that did not parse and were left out.
    skipped: int
    #: The delimiter a CSV sample was read with.
    delimiter: str | None = None


class UnreadableSample(ValueError):
    """A sample nothing can be inferred from (no header, not JSON objects)."""


def read_sample(
    data: bytes, file_format: str, *, delimiter: str | None = None, encoding: str | None = None, max_rows: int = 10_000
) -> Sample:
    """The columns and up to ``max_rows`` rows of ``data`` (``file_format``: csv, json or ndjson)."""
    decoding = detect(data[:4], encoding)
    text = data[decoding.bom :].decode(decoding.bare_codec, errors="replace")
    if file_format == "csv":
        return _csv_sample(text, delimiter, max_rows)
    if file_format == "ndjson" or (file_format == "json" and text.lstrip()[:1] == "{"):
        values: list[Any] = []
        skipped = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            if len(values) >= max_rows:
                break
            try:
                values.append(json.loads(line))
            except ValueError:
                skipped += 1
        return _objects_sample(values, skipped)
    if file_format == "json":
        return _objects_sample(*_array_elements(text, max_rows))
    raise UnreadableSample(f"unsupported format {file_format!r}; choose from csv, json, ndjson")


def _csv_sample(text: str, delimiter: str | None, max_rows: int) -> Sample:
    lines = text.splitlines(keepends=True)
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise UnreadableSample("the sample has no header line")
    chosen = delimiter or sniff_delimiter(lines[0])
    reader = csv.reader(io.StringIO("".join(lines)), delimiter=chosen)
    try:
        header = next(reader)
    except csv.Error as error:
        raise UnreadableSample(f"the header line is not CSV: {error}") from None
    columns = tuple(clean_text(name) for name in header[:MAX_SAMPLE_COLUMNS])
    rows: list[dict[str, Any]] = []
    skipped = 0
    while len(rows) < max_rows:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error:
            skipped += 1  # an unclosed quote: the rest of the sample is one broken record
            break
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, as the parser skips it
        if len(cells) != len(header):
            skipped += 1
            continue
        rows.append(dict(zip(columns, cells, strict=False)))
    return Sample(columns, tuple(rows), skipped, chosen)


def _array_elements(text: str, max_rows: int) -> tuple[list[Any], int]:
    """The elements of a JSON array at the start of ``text``, up to where it ends or is cut short."""
    start = text.find("[")
    if start < 0 or text[:start].strip():
        raise UnreadableSample("expected a JSON array of objects, or one JSON object per line")
    values: list[Any] = []
    index = start + 1
    while len(values) < max_rows:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            return values, 0
        try:
            value, index = decode(text, index)
        except (ValueError, RecursionError):
            return values, 1  # cut short (or broken) here: what came before stands
        values.append(value)
    return values, 0


def _objects_sample(values: list[Any], skipped: int) -> Sample:
    columns: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    for value in values:
        if not isinstance(value, dict):
            skipped += 1
            continue
        row = {clean_text(str(key)): item for key, item in value.items()}
        for key in row:
            if len(columns) < MAX_SAMPLE_COLUMNS:
                columns.setdefault(key)
        rows.append(row)
    if not rows:
        raise UnreadableSample("the sample holds no JSON object")
    return Sample(tuple(columns), tuple(rows), skipped)
