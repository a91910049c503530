"""Stream rows out of a stored file: CSV, a JSON array of objects, NDJSON, an XLSX sheet, or Parquet.

Readers do no validation beyond the file's structure and the limits. Each yields
``SourceRow`` values keyed by dataset field name (columns matched by name or alias, once the
upload's column mapping, ``UploadOptions.column_map``, renamed or ignored them;
with ``unknown_columns = "keep"``, the others under ``extra_columns``; with
``"reject"``, they fail a CSV file or reject a JSON row); a row whose structure is broken
(wrong field count, not a JSON object, past a limit, undecodable bytes) carries a
row-level error instead. A file that cannot be read on raises ``Unreadable`` with
the reason and where it broke; rows before that point have already been yielded.

XLSX and Parquet files are binary and typed: they are read from the stored file itself, with
random access (see ``ingestro.formats.xlsx_rows`` and ``ingestro.formats.parquet_rows``), and
are never compressed by the upload (they are compressed inside).

A text file is first read strictly, which costs nothing per row. Only if some bytes
do not decode is it read again, escaping them (see ``ingestro.formats.decoding``), and the
rows already given are skipped: the same file always gives the same rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TextIO

import attrs

from ingestro.datasets import Dataset
from ingestro.domain.events import UploadOptions
from ingestro.domain.limits import DEFAULT_LIMITS, Limits
from ingestro.formats.csv_rows import csv_rows
from ingestro.formats.decoding import BrokenStream, Decoding, Source, open_text
from ingestro.formats.json_array import json_array_rows
from ingestro.formats.json_rows import JsonValues, first_significant_char, ndjson_rows
from ingestro.formats.lines import PhysicalLines, TrackedLines
from ingestro.formats.parquet_rows import parquet_rows
from ingestro.formats.source import FileNotes, ReadAgain, SourceRow, Unreadable, storable
from ingestro.formats.stored import open_seekable
from ingestro.formats.xlsx_rows import xlsx_rows

TEXT_FORMATS = ("csv", "json", "ndjson")
#: The formats read from the stored file with random access, not as text.
BINARY_FORMATS = ("xlsx", "parquet")
FORMATS = TEXT_FORMATS + BINARY_FORMATS


@attrs.define
class RowReader:
    """Iterates a file's rows; ``unknown_columns`` fills in as it goes."""

    path: Source
    format: str
    dataset: Dataset
    options: UploadOptions = UploadOptions()
    limits: Limits = DEFAULT_LIMITS
    notes: FileNotes = attrs.field(factory=FileNotes)
    #: What counts the characters read (the lines of CSV and NDJSON, the text of a JSON array).
    _counted: PhysicalLines | _CountedText | None = attrs.field(default=None, init=False)

    @property
    def unknown_columns(self) -> list[str]:
        return self.notes.unknown_columns

    @property
    def chars_read(self) -> int:
        """Characters of the file's text read so far (CSV, NDJSON, JSON; 0 for XLSX and Parquet, whose rows are
        bounded by their own limits): what bounds the text behind a batch (``ingestro.formats.parsing``)."""
        counted = self._counted
        return 0 if counted is None else counted.chars

    def __iter__(self) -> Iterator[SourceRow]:
        if self.format not in FORMATS:
            raise Unreadable(f"unsupported format {self.format!r}", None)
        return self._rows()

    def as_written(self, row: SourceRow) -> Any:
        """The row as it was in the file, for a report (a CSV row as a header -> text mapping when it fits).

        Made storable: see ``ingestro.formats.source.storable``.
        """
        raw = row.raw
        header = self.notes.header
        if header is not None and isinstance(raw, list) and len(raw) == len(header):
            raw = dict(zip(header, raw, strict=True))
        return storable(raw, self.limits.field_chars, self.limits.json_depth)

    def _rows(self) -> Iterator[SourceRow]:
        if self.format in BINARY_FORMATS:
            yield from self._binary_rows()
            return
        try:
            try:
                with self._opened(escaping=False) as rows:
                    yield from rows
                return
            except ReadAgain as again:
                given = again.line
            with self._opened(escaping=True) as rows:
                for row in rows:
                    if row.line > given:
                        yield row
        except BrokenStream as broken:
            raise Unreadable(broken.reason, None) from None

    def _binary_rows(self) -> Iterator[SourceRow]:
        if self.options.compression is not None:
            raise Unreadable(f"a {self.format} file is compressed inside already: upload it without gzip", None)
        with open_seekable(self.path) as content:
            if self.format == "xlsx":
                options = self.options
                yield from xlsx_rows(content, self.dataset, options.sheet, self.limits, self.notes, options.column_map)
            else:
                yield from parquet_rows(content, self.dataset, self.limits, self.notes, self.options.column_map)

    @contextlib.contextmanager
    def _opened(self, *, escaping: bool) -> Iterator[Iterator[SourceRow]]:
        """The file's rows, read from a text opened strictly or escaping, closed on leaving."""
        options, limits = self.options, self.limits
        layout = {"csv": "csv", "ndjson": "lines"}.get(self.format) or self._json_layout(escaping)
        with open_text(self.path, options.compression, options.encoding, limits, escaping=escaping) as (text, decoding):
            if layout == "csv":
                yield csv_rows(
                    self._lines(text, decoding, escaping),
                    self.dataset,
                    options.delimiter,
                    limits,
                    self.notes,
                    options.column_map,
                )
                return
            values = JsonValues(self.dataset, limits, self.notes, options.column_map)
            if layout == "array":
                counted = self._counted = _CountedText(text)
                yield json_array_rows(counted, decoding, values, limits, escaping=escaping)
            elif layout == "lines":
                yield ndjson_rows(self._lines(text, decoding, escaping), values, limits)
            else:
                yield iter(())

    def _json_layout(self, escaping: bool) -> str:
        """A JSON file's layout by its first character: ``array``, ``lines`` (objects one per line), or ``empty``."""
        options = self.options
        try:
            with open_text(self.path, options.compression, options.encoding, self.limits, escaping=escaping) as (
                text,
                _,
            ):
                first = first_significant_char(text)
        except UnicodeDecodeError:
            raise ReadAgain(0) from None
        if first == "[":
            return "array"
        if first == "{":
            return "lines"
        if not first:
            return "empty"
        raise Unreadable("expected a JSON array of objects or one JSON object per line", 1)

    def _lines(self, text: TextIO, decoding: Decoding, escaping: bool) -> PhysicalLines:
        limits = self.limits
        lines: PhysicalLines
        if escaping:
            lines = TrackedLines(text, limits.line_chars, limits.row_chars, decoding.byte_length, decoding.bom)
        else:
            lines = PhysicalLines(text, limits.line_chars, limits.row_chars)
        self._counted = lines
        return lines


class _CountedText:
    """A text read in chunks (a JSON array's), counting the characters it gave."""

    __slots__ = ("_read", "chars")

    def __init__(self, text: TextIO) -> None:
        self._read = text.read
        self.chars = 0

    def read(self, size: int = -1, /) -> str:
        chunk = self._read(size)
        self.chars += len(chunk)
        return chunk


__all__ = ["BINARY_FORMATS", "FORMATS", "TEXT_FORMATS", "RowReader", "SourceRow", "Unreadable"]
