"""Rows of the typed, columnar formats (XLSX, Parquet): cells by position into a record.

A file of these formats has a header (a sheet's first row, a Parquet schema) and rows of
typed cells (text, numbers as decimal text, booleans, dates; nested values in Parquet). A
row is made here as CSV makes one: the header's fields by name and alias, the unknown
columns kept under ``extra_columns`` when the dataset keeps them, and the row rejected
with ``field_too_large`` when a text cell is past the field limit.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

import attrs

from ingestro.datasets import EXTRA_COLUMNS, Dataset, UnknownColumns
from ingestro.datasets.column_maps import ColumnMap
from ingestro.domain.events import FieldError
from ingestro.domain.limits import Limits
from ingestro.formats.header import checked_header
from ingestro.formats.source import FileNotes, SourceRow, clean_text


@attrs.frozen
class TypedColumns:
    """Where a typed file's fields are, by its header."""

    header: list[str]
    #: (position, field name) of the columns that are fields.
    fields: list[tuple[int, str]]
    #: (position, name as written) of the unknown columns kept with each row.
    kept: list[tuple[int, str]]
    field_chars: int

    @classmethod
    def of(
        cls,
        dataset: Dataset,
        header: list[str],
        limits: Limits,
        notes: FileNotes,
        line: int,
        column_map: ColumnMap | None = None,
    ) -> TypedColumns:
        """The columns of ``header`` (on ``line``), ``column_map`` applied; ``Unreadable`` as for a CSV header."""
        match = checked_header(dataset, header, limits, notes, line, column_map)
        kept = match.unknown_positions if dataset.unknown_columns is UnknownColumns.KEEP else {}
        return cls(header, list(match.positions.items()), list(kept.items()), limits.field_chars)

    @property
    def read_positions(self) -> list[int]:
        """The positions whose values a row needs, in order."""
        return sorted([position for position, _ in self.fields] + [position for position, _ in self.kept])

    def row(self, line: int, cells: list[Any]) -> SourceRow:
        """The row of ``cells`` (one per header column, None for an empty one)."""
        for position, value in enumerate(cells):
            if isinstance(value, str) and len(value) > self.field_chars:
                field = next((name for at, name in self.fields if at == position), None)
                column = clean_text(self.header[position])
                message = f"column {column!r} has {len(value)} characters, more than the limit of {self.field_chars}"
                return SourceRow(line, None, as_written(cells), FieldError(field, "field_too_large", message))
        record: dict[str, Any] = {name: cells[position] for position, name in self.fields}
        if self.kept:
            record[EXTRA_COLUMNS] = {name: cells[position] for position, name in self.kept}
        return SourceRow(line, record, as_written(cells))


def as_written(cells: list[Any]) -> list[Any]:
    """A row's cells as a report shows them (and events carry them): typed dates and times as ISO 8601 text."""
    return [cell.isoformat() if isinstance(cell, (date, time)) else cell for cell in cells]
