"""CSV rows: a header line, then one record per row, the delimiter sniffed or given.

Lines are numbered physically (LF, CRLF and CR each end one), and a row's line is
the line its record starts on. Blank lines (empty, or only spaces) are skipped. A
row is rejected, and the file read on, when it has the wrong number of fields, a
field past the field limit, a line past the line limit, a record past the row limit,
or (read from a text opened escaping) undecodable bytes.

Header columns match field names and aliases (``ingestro.formats.header``), after the upload's column
mapping renamed or ignored them (``ingestro.datasets.column_maps``). Unknown
columns are, by the dataset's ``unknown_columns``: noted and dropped (ignore); noted and
given with each record under ``extra_columns`` as {name as written: text} (keep); or
the file's failure at the header (reject).

A row read whole is a ``CsvRow``: the parser checks its cells by position, with the check
made for the header's layout, and its ``record`` is made only when someone asks for it.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from ingestro.datasets import EXTRA_COLUMNS, Dataset, UnknownColumns
from ingestro.datasets.column_maps import ColumnMap
from ingestro.datasets.rules import RowCheck, compile_dataset
from ingestro.domain.events import FieldError
from ingestro.domain.limits import Limits
from ingestro.formats.header import checked_header
from ingestro.formats.lines import LineTooLong, PhysicalLines, RowTooLarge, TrackedLines
from ingestro.formats.source import FileNotes, ReadAgain, SourceRow, Unreadable, clean_text

if TYPE_CHECKING:
    from _csv import Reader

#: Delimiters a header is sniffed for, in the order that breaks ties.
DELIMITERS = (",", ";", "\t", "|")

# The csv module's own field limit is process-wide (128 Ki characters by default);
# the limits of ingestro.domain.limits apply instead, per row, so it must never be the one to trip.
csv.field_size_limit(2**31 - 1)


def sniff_delimiter(header_line: str) -> str:
    """The candidate delimiter found most often in the header line; a comma when none is."""
    counts = [header_line.count(candidate) for candidate in DELIMITERS]
    best = max(counts)
    return DELIMITERS[counts.index(best)] if best else ","


def csv_rows(
    lines: PhysicalLines,
    dataset: Dataset,
    delimiter: str | None,
    limits: Limits,
    notes: FileNotes,
    column_map: ColumnMap | None = None,
) -> Iterator[SourceRow]:
    """The rows of the CSV file whose lines are ``lines``, its header read (and noted in ``notes``) first;
    ``column_map`` renames or ignores header columns before they are matched."""
    before_header = 0  # blank lines before the header
    try:
        for first in lines:
            if first.strip():
                break
            before_header += 1
        else:
            raise Unreadable("the file has no header row", None)
        if isinstance(lines, TrackedLines) and lines.undecodable_at is not None:
            raise Unreadable(
                f"the header has bytes that do not decode at byte {lines.undecodable_at};"
                " pass ?encoding= if the file is not UTF-8",
                before_header + 1,
            )
        reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter or sniff_delimiter(first))
        header = next(reader)
    except (LineTooLong, RowTooLarge):
        raise Unreadable("the header is longer than the line or row limit", before_header + 1) from None
    except UnicodeDecodeError:
        raise ReadAgain(0) from None
    match = checked_header(dataset, header, limits, notes, before_header + 1, column_map)
    kept = match.unknown_positions if dataset.unknown_columns is UnknownColumns.KEEP else {}
    columns = CsvColumns(
        list(match.positions.items()), list(kept.items()), compile_dataset(dataset).cells_check(match.positions, kept)
    )
    return _records(reader, lines, header, match.positions, columns, before_header, limits)


@attrs.frozen
class CsvColumns:
    """Where a CSV file's fields are, by the header, and the check of its rows by position."""

    #: (position, field name) of the columns that are fields.
    fields: list[tuple[int, str]]
    #: (position, name as written) of the unknown columns that go with each row under ``extra_columns``.
    kept: list[tuple[int, str]]
    #: ``CompiledDataset.check`` of the row's record, from the cells.
    check: RowCheck

    def record(self, cells: list[str]) -> dict[str, Any]:
        """The row's values keyed by field name (and the kept unknown columns), as a JSON reader gives them."""
        record: dict[str, Any] = {name: cells[position] for position, name in self.fields}
        if self.kept:
            record[EXTRA_COLUMNS] = {name: cells[position] for position, name in self.kept}
        return record


class CsvRow(SourceRow):
    """A CSV row read whole (the header's width, within the limits): ``raw`` is its cells.

    The parser checks it by position (``columns.check(raw)``); its ``record`` is made only when asked for.
    """

    __slots__ = ("columns",)

    def __init__(self, line: int, cells: list[str], columns: CsvColumns) -> None:
        self.line = line
        self.raw = cells
        self.error = None
        self.columns = columns

    @property
    def record(self) -> dict[str, Any]:  # type: ignore[override]  # read-only: made from the cells
        return self.columns.record(self.raw)


def _records(
    reader: Reader,
    lines: PhysicalLines,
    header: list[str],
    positions: dict[int, str],
    columns: CsvColumns,
    before_header: int,
    limits: Limits,
) -> Iterator[SourceRow]:
    """The rows after the header: a ``CsvRow`` when read whole, else a ``SourceRow`` with its error."""
    # The hot path: per record, a few integer operations unless something is wrong.
    width = len(header)
    field_chars = limits.field_chars
    tracked = lines if isinstance(lines, TrackedLines) else None
    # csv.reader counts the lines it read; blank lines before the header and lines
    # skipped whole (too long) it never saw.
    unseen = before_header
    end = unseen + reader.line_num  # the last line read
    lines.record_start = lines.chars
    if tracked is not None:
        tracked.undecodable_at = None
    while True:
        try:
            for fields in reader:
                line = end + 1
                end = unseen + reader.line_num
                chars = lines.chars
                size = chars - lines.record_start
                lines.record_start = chars
                if tracked is not None and tracked.undecodable_at is not None:
                    error = FieldError(None, "invalid_encoding", f"byte {tracked.undecodable_at} does not decode")
                    tracked.undecodable_at = None
                    yield SourceRow(line, None, fields, error)
                    continue
                if len(fields) != width:
                    if not fields or (len(fields) == 1 and not fields[0].strip()):
                        continue  # a blank line
                    error = FieldError(None, "field_count", f"expected {width} fields, found {len(fields)}")
                    yield SourceRow(line, None, fields, error)
                    continue
                if size > field_chars and (too_large := _too_large_field(fields, header, positions, field_chars)):
                    yield SourceRow(line, None, fields, too_large)
                    continue
                yield CsvRow(line, fields, columns)
            return
        except LineTooLong:
            unseen += 1
            error = FieldError(None, "line_too_long", f"a line is longer than {limits.line_chars} characters")
        except RowTooLarge:
            error = FieldError(None, "row_too_large", f"the row is longer than {limits.row_chars} characters")
        except UnicodeDecodeError:
            raise ReadAgain(end) from None
        # The record is abandoned; csv.reader starts afresh on the next line.
        line = end + 1
        end = unseen + reader.line_num
        lines.record_start = lines.chars
        if tracked is not None:
            tracked.undecodable_at = None
        yield SourceRow(line, None, None, error)


def _too_large_field(
    fields: list[str], header: list[str], positions: dict[int, str], field_chars: int
) -> FieldError | None:
    for position, value in enumerate(fields):
        if len(value) > field_chars:
            column = clean_text(header[position])
            return FieldError(
                positions.get(position),
                "field_too_large",
                f"column {column!r} has {len(value)} characters, more than the limit of {field_chars}",
            )
    return None
