"""How much of a file the parser holds at once: the limits that keep hostile files bounded.

A row past a row-level limit is rejected with a code and the file goes on; a file past
a file-level limit (decompressed size, compression ratio, header width, an XLSX workbook's
shared strings, a Parquet row group) fails its job.
Sizes are in characters of the decoded text, except the two decompression limits.
The defaults here are the defaults of the ``INGESTRO_MAX_*`` variables.
"""

from __future__ import annotations

from typing import Any

import attrs

#: Deeper than this, orjson cannot write a value and cattrs recursion gets close to
#: Python's limit: the configurable JSON depth stays well below both.
DEPTH_CEILING = 128


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value}")


@attrs.frozen
class Limits:
    #: A CSV field or a JSON string (at any depth) longer than this rejects the row: field_too_large.
    field_chars: int = attrs.field(default=131_072, validator=_positive)
    #: A CSV record (all its lines) or a JSON element longer than this rejects the row: row_too_large.
    row_chars: int = attrs.field(default=1_048_576, validator=_positive)
    #: A physical line (CSV, NDJSON) longer than this, its line break not counted, rejects the row: line_too_long.
    line_chars: int = attrs.field(default=1_048_576, validator=_positive)
    #: A CSV header wider than this fails the job; a JSON object with more keys rejects the row: too_many_columns.
    columns: int = attrs.field(default=1_000, validator=_positive)
    #: A JSON row nested deeper than this (the row object itself is depth 1) is rejected: too_deep.
    json_depth: int = attrs.field(default=32, validator=[_positive, attrs.validators.le(DEPTH_CEILING)])
    #: A compressed upload that inflates past this many bytes fails its job.
    decompressed_bytes: int = attrs.field(default=10 * 1024**3, validator=_positive)
    #: A compressed upload that inflates past this many times its compressed size fails its job.
    compression_ratio: float = attrs.field(default=100.0, validator=_positive)
    #: An XLSX workbook whose shared-string table takes more than this in memory (its characters, plus
    #: 64 bytes per string) fails its job. (Its other parts are streamed, within the two limits above.)
    shared_strings_bytes: int = attrs.field(default=256 * 1024**2, validator=_positive)
    #: A Parquet file with a row group holding more than this many bytes uncompressed (in the columns
    #: read) fails its job: a row group is read into memory whole.
    row_group_bytes: int = attrs.field(default=512 * 1024**2, validator=_positive)


DEFAULT_LIMITS = Limits()
