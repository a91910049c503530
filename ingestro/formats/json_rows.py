"""JSON rows: decoding JSON values, checking them as rows, and NDJSON (one value per line).

Values are read with Python's json decoder: integers exactly, decimals as doubles,
the last of duplicate keys wins. NaN, Infinity and numbers past a double's range are
not JSON numbers: their row is rejected (invalid_number). Where a row breaks a limit
(too deep, a string too long, too many keys) or is not an object, it is rejected and
reading goes on; an NDJSON line that is not JSON is a rejected row too. (The elements
of an array are read by ``ingestro.formats.json_array``.)

Keys match field names and aliases like CSV header columns, after the upload's column mapping
renamed or ignored them (``ingestro.datasets.column_maps``). Two keys naming one field
(``email`` and ``E-mail``) reject the row (duplicate_column). Unknown keys are, by the
dataset's ``unknown_columns``: noted and dropped (ignore); noted and given under
``extra_columns`` as {key as written: value} (keep); or the row's rejection (reject,
unknown_column).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from json.scanner import make_scanner
from typing import Any, TextIO

from ingestro.datasets import EXTRA_COLUMNS, Dataset, UnknownColumns
from ingestro.datasets.column_maps import IGNORED, ColumnMap, mapped_columns
from ingestro.datasets.rules import column_key, compile_dataset
from ingestro.domain.events import FieldError
from ingestro.domain.limits import Limits
from ingestro.formats.lines import LineTooLong, PhysicalLines, RowTooLarge, TrackedLines
from ingestro.formats.source import FileNotes, ReadAgain, SourceRow, deeper_than, named

_JSON_WHITESPACE = " \t\n\r"
#: Characters read at a time to find where a JSON file starts.
_PEEK_CHARS = 64 * 1024


class _NotANumber(ValueError):
    """A number JSON cannot carry."""


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _NotANumber(f"{text[:40]} is past the range of a double")
    return number


def _constant(name: str) -> float:
    raise _NotANumber(f"{name} is not a JSON number")


# typeshed's stub names the wrong parameter type: make_scanner takes a JSONDecoder.
_SCAN = make_scanner(json.JSONDecoder(parse_float=_finite, parse_constant=_constant))  # type: ignore[arg-type]


def decode(text: str, index: int) -> tuple[Any, int]:
    """The JSON value at ``text[index]`` and the index past it (json's raw_decode, one call less per row)."""
    try:
        return _SCAN(text, index)
    except StopIteration as stop:
        raise json.JSONDecodeError("Expecting value", text, stop.value) from None


def first_significant_char(text: TextIO) -> str:
    """The first character of ``text`` that is not JSON whitespace ("" for none)."""
    while chunk := text.read(_PEEK_CHARS):
        stripped = chunk.lstrip(_JSON_WHITESPACE)
        if stripped:
            return stripped[0]
    return ""


class JsonValues:
    """Turns decoded JSON values into rows of ``dataset``, within ``limits``."""

    def __init__(self, dataset: Dataset, limits: Limits, notes: FileNotes, column_map: ColumnMap | None = None) -> None:
        self._columns = mapped_columns(compile_dataset(dataset).columns, column_map)
        self._policy = dataset.unknown_columns
        self._limits = limits
        self._notes = notes

    def row(self, line: int, value: Any, source: str, start: int, end: int) -> SourceRow:
        """The row for ``value``, decoded from ``source[start:end]`` (whose text bounds the checks cheaply)."""
        limits = self._limits
        if not isinstance(value, dict):
            return SourceRow(line, None, value, FieldError(None, "not_an_object", "expected a JSON object"))
        if len(value) > limits.columns:
            error = FieldError(None, "too_many_columns", f"{len(value)} keys, more than the limit of {limits.columns}")
            return SourceRow(line, None, value, error)
        # Nesting needs an opening bracket per level, and no string is longer than the text.
        brackets = source.count("{", start, end) + source.count("[", start, end)
        if brackets > limits.json_depth and deeper_than(value, limits.json_depth):
            error = FieldError(None, "too_deep", f"nested deeper than {limits.json_depth} levels")
            return SourceRow(line, None, value, error)
        if end - start > limits.field_chars and _longer_string(value, limits.field_chars):
            error = FieldError(None, "field_too_large", f"a string is longer than {limits.field_chars} characters")
            return SourceRow(line, None, value, error)
        columns = self._columns
        record: dict[str, Any] = {}
        unknown: dict[str, Any] | None = None
        for name, item in value.items():
            field = columns.get(column_key(name))
            if field == IGNORED:
                continue
            if field is None:
                self._notes.note_unknown(name)
                if unknown is None:
                    unknown = {}
                unknown[name] = item
            elif field in record:
                return SourceRow(line, None, value, self._duplicate(value, field))
            else:
                record[field] = item
        if unknown:
            if self._policy is UnknownColumns.REJECT:
                message = f"the dataset rejects unknown columns, and the row has {named(list(unknown))}"
                error = FieldError(None, "unknown_column", message)
                return SourceRow(line, None, value, error)
            if self._policy is UnknownColumns.KEEP:
                record[EXTRA_COLUMNS] = unknown
        return SourceRow(line, record, value)

    def _duplicate(self, value: dict[str, Any], field: str) -> FieldError:
        spellings = [name for name in value if self._columns.get(column_key(name)) == field]
        return FieldError(field, "duplicate_column", f"keys {named(spellings)} all name field {field}")

    def decoded(self, line: int, text: str) -> SourceRow:
        """The row of the JSON text ``text`` (one NDJSON line, stripped)."""
        try:
            value, end = decode(text, 0)
        except json.JSONDecodeError as error:
            return SourceRow(line, None, text, FieldError(None, "invalid_json", f"not valid JSON: {error}"))
        except (ValueError, RecursionError) as error:
            return SourceRow(line, None, text, unreadable_value(error, self._limits))
        if end != len(text):
            extra = FieldError(None, "invalid_json", f"not valid JSON: extra data at column {end + 1}")
            return SourceRow(line, None, text, extra)
        return self.row(line, value, text, 0, end)


def unreadable_value(error: ValueError | RecursionError, limits: Limits) -> FieldError:
    """The row error for a value the decoder gave up on: too deep for it, or a number JSON cannot carry."""
    if isinstance(error, RecursionError):
        return FieldError(None, "too_deep", f"nested deeper than {limits.json_depth} levels")
    return FieldError(None, "invalid_number", str(error))


def _longer_string(value: Any, chars: int) -> bool:
    if isinstance(value, str):
        return len(value) > chars
    if isinstance(value, dict):
        return any(len(key) > chars or _longer_string(item, chars) for key, item in value.items())
    if isinstance(value, list):
        return any(_longer_string(item, chars) for item in value)
    return False


def ndjson_rows(lines: PhysicalLines, values: JsonValues, limits: Limits) -> Iterator[SourceRow]:
    """One row per non-blank line; a line's number is its physical line."""
    tracked = lines if isinstance(lines, TrackedLines) else None
    line = 0
    while True:
        try:
            for text in lines:
                line += 1
                lines.record_start = lines.chars
                if tracked is not None and tracked.undecodable_at is not None:
                    error = FieldError(None, "invalid_encoding", f"byte {tracked.undecodable_at} does not decode")
                    tracked.undecodable_at = None
                    yield SourceRow(line, None, text.rstrip("\r\n"), error)
                    continue
                stripped = text.strip(_JSON_WHITESPACE)
                if stripped:
                    yield values.decoded(line, stripped)
            return
        except UnicodeDecodeError:
            raise ReadAgain(line) from None
        except LineTooLong:
            error = FieldError(None, "line_too_long", f"the line is longer than {limits.line_chars} characters")
        except RowTooLarge:
            error = FieldError(None, "row_too_large", f"the row is longer than {limits.row_chars} characters")
        line += 1
        lines.record_start = lines.chars
        if tracked is not None:
            tracked.undecodable_at = None
        yield SourceRow(line, None, None, error)
