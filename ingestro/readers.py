"""Stream rows out of a stored file: CSV, a JSON array of objects, or NDJSON.

Readers do no validation beyond the file's structure. Each yields ``SourceRow``
values keyed by dataset field name; a row whose structure is broken (wrong field
count, not a JSON object) carries a row-level error instead. A file that cannot
be read on raises ``Unreadable`` with the reason and where it broke; rows before
that point have already been yielded.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import ijson
import orjson

from ingestro.datasets import Dataset
from ingestro.events import FieldError
from ingestro.rules import column_key, match_columns

FORMATS = ("csv", "json", "ndjson")
#: Unknown column names remembered per file (a hostile file may have millions).
MAX_UNKNOWN_COLUMNS = 100


@attrs.frozen
class SourceRow:
    line: int
    #: Values keyed by field name; None when ``error`` says the row's structure is broken.
    record: dict[str, Any] | None
    #: The row as read: a CSV row's list of fields, a JSON value, an NDJSON line that is not JSON.
    raw: Any
    error: FieldError | None = None


class Unreadable(Exception):
    """The file cannot be read on from ``line`` (None: before the first row)."""

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@attrs.define
class RowReader:
    """Iterates a file's rows; ``unknown_columns`` fills in as it goes."""

    path: Path
    format: str
    dataset: Dataset
    unknown_columns: list[str] = attrs.field(factory=list)
    #: The CSV header once read.
    header: list[str] | None = None

    def __iter__(self) -> Iterator[SourceRow]:
        if self.format == "csv":
            return self._csv()
        if self.format not in ("json", "ndjson"):
            raise Unreadable(f"unsupported format {self.format!r}", None)
        return self._json()

    def as_written(self, row: SourceRow) -> Any:
        """The row as it was in the file, for a report: a CSV row as a header -> text mapping when it fits."""
        if self.header is not None and isinstance(row.raw, list) and len(row.raw) == len(self.header):
            return dict(zip(self.header, row.raw))
        return row.raw

    def _note_unknown(self, name: str) -> None:
        if name not in self.unknown_columns and len(self.unknown_columns) < MAX_UNKNOWN_COLUMNS:
            self.unknown_columns.append(name)

    def _csv(self) -> Iterator[SourceRow]:
        line = 0
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as text:
                reader = csv.reader(text)
                header: list[str] = []
                for header in reader:
                    if header:
                        break
                if not header:
                    raise Unreadable("the file has no header row", None)
                header_line = reader.line_num
                match = match_columns(self.dataset, header)
                if match.duplicates:
                    raise Unreadable(f"header repeats columns: {', '.join(match.duplicates)}", header_line)
                if match.missing_required:
                    raise Unreadable(
                        f"header lacks required columns: {', '.join(match.missing_required)}", header_line
                    )
                for name in match.unknown:
                    self._note_unknown(name)
                self.header = header
                width = len(header)
                positions = list(match.positions.items())
                end = header_line
                for fields in reader:
                    line, end = end + 1, reader.line_num
                    if not fields:
                        continue  # a blank line
                    if len(fields) != width:
                        error = FieldError(None, "field_count", f"expected {width} fields, found {len(fields)}")
                        yield SourceRow(line, None, fields, error)
                        continue
                    record = {name: fields[position] for position, name in positions}
                    yield SourceRow(line, record, fields)
        except UnicodeDecodeError:
            raise Unreadable(f"the file is not valid UTF-8 (near line {line + 1})", line + 1) from None
        except csv.Error as error:
            raise Unreadable(f"CSV error: {error}", line + 1) from None

    def _json(self) -> Iterator[SourceRow]:
        with open(self.path, "rb") as stream:
            first = _first_significant_byte(stream)
            if first == b"":
                return
            if first == b"[":
                yield from self._json_array(stream)
            elif first == b"{":
                yield from self._ndjson(stream)
            else:
                raise Unreadable("expected a JSON array of objects or one JSON object per line", 1)

    def _record(self, line: int, value: Any) -> SourceRow:
        if not isinstance(value, dict):
            return SourceRow(line, None, value, FieldError(None, "not_an_object", "expected a JSON object"))
        fields = set(self.dataset.field_names)
        record: dict[str, Any] = {}
        for name, item in value.items():
            key = column_key(name)
            if key in fields:
                record[key] = item
            else:
                self._note_unknown(name)
        return SourceRow(line, record, value)

    def _json_array(self, stream: BinaryIO) -> Iterator[SourceRow]:
        # A JSON array's rows are numbered by their position in the array, from 1.
        position = 0
        try:
            for position, value in enumerate(ijson.items(stream, "item", use_float=True), start=1):
                yield self._record(position, value)
        except ijson.JSONError as error:
            raise Unreadable(f"invalid JSON after element {position}: {error}", position + 1) from None

    def _ndjson(self, stream: BinaryIO) -> Iterator[SourceRow]:
        for line, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                yield SourceRow(line, None, text, FieldError(None, "invalid_json", f"not valid JSON: {error}"))
                continue
            yield self._record(line, value)


def _first_significant_byte(stream: BinaryIO) -> bytes:
    """Peek at the first byte that is not whitespace or a UTF-8 BOM, leaving the stream at the start."""
    head = stream.read(64 * 1024)
    stream.seek(0)
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        stream.seek(3)
    return stripped[:1]


__all__ = ["FORMATS", "RowReader", "SourceRow", "Unreadable"]
