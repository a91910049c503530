"""A header row checked against a dataset: the same rules for CSV, XLSX and Parquet.

A header wider than the column limit, repeating a field, lacking a required one, or (when
the dataset rejects unknown columns) naming one the dataset does not declare fails the file.
"""

from __future__ import annotations

from ingestro.datasets import Dataset, UnknownColumns
from ingestro.datasets.column_maps import ColumnMap
from ingestro.datasets.rules import ColumnMatch, match_columns
from ingestro.domain.limits import Limits
from ingestro.formats.source import FileNotes, Unreadable, clean_text, named


def checked_header(
    dataset: Dataset,
    header: list[str],
    limits: Limits,
    notes: FileNotes,
    line: int,
    column_map: ColumnMap | None = None,
) -> ColumnMatch:
    """How ``header`` (on ``line``) matches ``dataset`` once ``column_map`` renamed or ignored its columns; its
    unknown columns and itself noted in ``notes``.

    ``Unreadable`` when the file cannot be read with it (see the module's docstring).
    """
    if len(header) > limits.columns:
        raise Unreadable(f"the header has {len(header)} columns, more than the limit of {limits.columns}", line)
    match = match_columns(dataset, header, column_map)
    if match.duplicates:
        repeated = ", ".join(clean_text(name) for name in match.duplicates[:10])
        raise Unreadable(f"header repeats columns: {repeated}", line)
    if match.missing_required:
        raise Unreadable(f"header lacks required columns: {', '.join(match.missing_required)}", line)
    if match.unknown and dataset.unknown_columns is UnknownColumns.REJECT:
        raise Unreadable(
            f"header has columns dataset {dataset.name} does not declare, and it rejects unknown columns:"
            f" {named(match.unknown)}",
            line,
        )
    for name in match.unknown:
        notes.note_unknown(name)
    notes.header = header
    return match
