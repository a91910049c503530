"""Parquet rows: typed columns read a row group at a time (pyarrow), a row's line its row number.

The schema's top-level columns are the header, matched like a CSV header; only the columns
the dataset takes (and the unknown ones it keeps) are read. A row group is read into memory
whole, so one holding more than ``row_group_bytes`` uncompressed in those columns fails the
file. Values keep their types: integers, floats and booleans as they are, decimals as their
exact text, dates and timestamps as such (a timestamp with a zone keeps it), times as ISO
text, text as text; binary values must be UTF-8 text, else the row is rejected
(``invalid_encoding``). Nested values (structs, lists, maps) are JSON values, for a ``json``
field: a map as a list of [key, value] pairs. A file that is not Parquet, or is corrupt,
fails the job with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, BinaryIO

from ingestro.datasets import Dataset
from ingestro.datasets.column_maps import ColumnMap
from ingestro.domain.events import FieldError
from ingestro.domain.limits import Limits
from ingestro.formats.source import FileNotes, SourceRow, Unreadable, deeper_than
from ingestro.formats.typed_rows import TypedColumns

#: Rows converted to Python values at a time, within a row group.
_BATCH_ROWS = 1024


class _NotText(ValueError):
    """A binary value that is not UTF-8 text."""


def _plain(value: Any, nested: bool) -> Any:
    """``value`` as pyarrow gives it, as a row value (``nested``: inside a struct, list or map: JSON only)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat() if nested else value
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise _NotText(f"a binary value of {len(value)} bytes is not UTF-8 text") from None
    if isinstance(value, dict):
        return {str(key): _plain(item, True) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, True) for item in value]
    return str(value)  # durations, and whatever else pyarrow gives: their text


def parquet_rows(
    content: BinaryIO, dataset: Dataset, limits: Limits, notes: FileNotes, column_map: ColumnMap | None = None
) -> Iterator[SourceRow]:
    """The rows of the Parquet file ``content`` (seekable), its schema checked (and noted in ``notes``) first, its
    columns renamed or ignored by ``column_map``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(content)
        header = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise Unreadable(f"not a readable Parquet file: {str(error).strip()}", None) from None
    columns = TypedColumns.of(dataset, header, limits, notes, 1, column_map)
    read = columns.read_positions
    wanted = [header[position] for position in read]
    metadata = parquet.metadata
    line = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        size = sum(
            row_group.column(index).total_uncompressed_size
            for index in range(row_group.num_columns)
            if row_group.column(index).path_in_schema.split(".", 1)[0] in wanted
        )
        if size > limits.row_group_bytes:
            raise Unreadable(
                f"row group {group} holds {size} bytes uncompressed, more than the limit of {limits.row_group_bytes}",
                line + 1,
            )
        try:
            batches = parquet.iter_batches(batch_size=_BATCH_ROWS, row_groups=[group], columns=wanted)
            for batch in batches:
                values = [batch.column(index).to_pylist() for index in range(batch.num_columns)]
                for offset in range(batch.num_rows):
                    line += 1
                    cells: list[Any] = [None] * len(header)
                    try:
                        for at, position in enumerate(read):
                            cells[position] = _plain(values[at][offset], False)
                    except _NotText as not_text:
                        yield SourceRow(line, None, None, FieldError(None, "invalid_encoding", str(not_text)))
                        continue
                    if any(deeper_than(cell, limits.json_depth) for cell in cells):
                        too_deep = FieldError(None, "too_deep", f"nested deeper than {limits.json_depth} levels")
                        yield SourceRow(line, None, None, too_deep)
                        continue
                    yield columns.row(line, cells)
        except (pa.ArrowException, OSError) as error:
            raise Unreadable(
                f"the Parquet file is corrupt in row group {group}: {str(error).strip()}", line + 1
            ) from None
