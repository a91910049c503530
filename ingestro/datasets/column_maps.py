"""Column mappings: which file column (CSV header or JSON key) is which dataset field, or is ignored.

A mapping is a JSON object ``{"File Header": "field", "Other": null}`` given with an upload
(``?map=``) or saved per dataset and header shape. ``checked_column_map`` is what an upload may
know of it before any byte of the file is read: that each target is a field of the dataset, no
field is named twice, no column twice. Whether a mapped column is in the file is the file's
matter: a mapped column the file does not have maps nothing (a JSON row may lack a key any row has).

Applied by the readers before columns are matched against the dataset (``mapped_columns``): a
mapped column is its field, whatever its own name would match; an ignored one is neither a
field nor an unknown column (not noted, not kept, not rejected). Columns are compared as header
columns are with field names (``column_key``: trimmed, case-insensitive).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ingestro.datasets import Dataset
from ingestro.datasets.declarations import column_key

#: The field name an ignored column maps to in ``mapped_columns``: no field is named "".
IGNORED = ""
#: At most this many columns in a mapping, and this many characters in a column's name.
MAX_MAPPED_COLUMNS = 1_000
MAX_COLUMN_CHARS = 1_000

ColumnMap = dict[str, str | None]


class InvalidColumnMap(ValueError):
    """A mapping that cannot be applied to its dataset; the message says why, for the client."""


def parse_column_map(text: str, dataset: Dataset) -> ColumnMap:
    """The mapping of the JSON object ``text``, checked against ``dataset`` (see ``checked_column_map``)."""
    if len(text) > MAX_MAPPED_COLUMNS * (MAX_COLUMN_CHARS + 100):
        raise InvalidColumnMap("the column mapping is too long")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidColumnMap('the column mapping must be a JSON object: {"File column": "field" or null}') from None
    return checked_column_map(value, dataset)


def checked_column_map(value: Any, dataset: Dataset) -> ColumnMap:
    """``value`` as a mapping of ``dataset``'s columns; raises ``InvalidColumnMap`` when it is not one.

    Each key is a column as written in files (non-empty, printable); each value is a field's name (or
    alias: stored as the name) or None to ignore the column. No two columns may name one field, and no
    two keys may be one column (``Email`` and `` email``).
    """
    if not isinstance(value, dict):
        raise InvalidColumnMap('the column mapping must be a JSON object: {"File column": "field" or null}')
    if len(value) > MAX_MAPPED_COLUMNS:
        raise InvalidColumnMap(f"the column mapping has more than {MAX_MAPPED_COLUMNS} columns")
    fields = _field_spellings(dataset)
    mapping: ColumnMap = {}
    columns: dict[str, str] = {}
    targets: dict[str, str] = {}
    for column, target in value.items():
        if not column.strip() or len(column) > MAX_COLUMN_CHARS or not column.isprintable():
            raise InvalidColumnMap(
                f"a mapped column must be a printable name of 1 to {MAX_COLUMN_CHARS} characters, not {_shown(column)}"
            )
        key = column_key(column)
        if key in columns:
            raise InvalidColumnMap(f"columns {_shown(columns[key])} and {_shown(column)} are the same column")
        columns[key] = column
        if target is None:
            mapping[column] = None
            continue
        field = fields.get(column_key(target)) if isinstance(target, str) else None
        if field is None:
            raise InvalidColumnMap(
                f"column {_shown(column)} is mapped to {_shown(target)}, which is not a field of dataset"
                f" {dataset.name} (fields: {', '.join(dataset.field_names)}); map it to null to ignore it"
            )
        if field in targets:
            raise InvalidColumnMap(f"columns {_shown(targets[field])} and {_shown(column)} are both mapped to {field}")
        targets[field] = column
        mapping[column] = field
    return mapping


def mapped_columns(columns: Mapping[str, str], column_map: ColumnMap | None) -> dict[str, str]:
    """``columns`` (``column_key`` -> field name, as ``CompiledDataset.columns``) with ``column_map`` applied.

    A mapped column's key gives its field, an ignored one's gives ``IGNORED``.
    """
    if not column_map:
        return dict(columns)
    applied = dict(columns)
    for column, field in column_map.items():
        applied[column_key(column)] = IGNORED if field is None else field
    return applied


def header_shape(header: Iterable[str]) -> str:
    """The shape of a header: the SHA-256 of its columns as compared (``column_key``), in order.

    Two files whose headers differ only in case or surrounding spaces have one shape, so a saved
    mapping finds them both.
    """
    keys = [column_key(column) for column in header]
    return hashlib.sha256(orjson.dumps(keys)).hexdigest()


def _field_spellings(dataset: Dataset) -> dict[str, str]:
    return {column_key(spelling): field.name for field in dataset.fields for spelling in (field.name, *field.aliases)}


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(text[:80] + ("…" if len(text) > 80 else ""))
