"""The row rules: normalize, validate and hash one row of a dataset.

Pure functions over plain values: no I/O, no clock. ``compile_dataset`` resolves a
declaration once into one check per field (normalize by type, then default, required
and the constraints the field declares); ``check_row`` runs them over a record. A row
is accepted when every field passes; its content hash is the SHA-256 of the canonical
JSON (sorted keys) of its content: the normalized values that are neither null nor
their field's default, plus, with ``unknown_columns = "keep"``, the unknown columns
under ``extra_columns`` when a row has any. Leaving out what an empty value becomes
keeps a row's identity when the dataset gains an optional field: the rows stored
before and the same rows uploaded again hash alike.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import cache
from typing import Any

import attrs
import orjson

from ingestro.dates import DATE_FORMATS, date_normalizer, datetime_normalizer, normalize_date
from ingestro.datasets import EXTRA_COLUMNS, Dataset, Field, FieldType, InvalidDeclaration, UnknownColumns
from ingestro.events import FieldError
from ingestro.field_values import (
    Invalid,
    holds_nul,
    normalize_boolean,
    normalize_email,
    normalize_integer,
    normalize_json,
    normalize_json_object,
    normalize_number,
    normalize_string,
    normalize_uuid,
    text,
)

__all__ = [
    "DATE_FORMATS",
    "Checked",
    "ColumnMatch",
    "CompiledDataset",
    "Invalid",
    "check_row",
    "column_key",
    "compile_dataset",
    "content_hash",
    "match_columns",
    "normalize_boolean",
    "normalize_date",
    "normalize_email",
    "normalize_integer",
    "normalize_json",
    "normalize_json_object",
    "normalize_number",
    "normalize_string",
    "normalize_uuid",
]

#: A field's check: the value as read in, the normalized value out, or ``Invalid``.
FieldCheck = Callable[[Any], Any]


@attrs.frozen
class Checked:
    """The outcome of checking one row: normalized values and hash, or errors."""

    values: dict[str, Any]
    content_hash: str | None
    errors: list[FieldError]


@attrs.frozen
class CompiledDataset:
    """A dataset's rules, resolved once so the per-row loop does one call per field."""

    dataset: Dataset
    #: (field name, its check), in declared order.
    checks: tuple[tuple[str, FieldCheck], ...]
    #: ``column_key`` of each field's name and aliases -> the field's name.
    columns: dict[str, str]
    #: Whether a record's ``extra_columns`` go into the row (``unknown_columns = "keep"``).
    keeps_unknown: bool
    #: The normalized default of each field that has one.
    defaults: dict[str, Any]


def column_key(name: str) -> str:
    """How a header or JSON key is compared with field names and aliases: case-insensitive, trimmed."""
    return name.strip().lower()


@cache
def compile_dataset(dataset: Dataset) -> CompiledDataset:
    """The checks of ``dataset``; raises ``InvalidDeclaration`` if a field's default fails its own checks."""
    checks = tuple((field.name, _field_check(dataset, field)) for field in dataset.fields)
    columns = {
        column_key(spelling): field.name for field in dataset.fields for spelling in (field.name, *field.aliases)
    }
    defaults = {name: check(None) for (name, check), field in zip(checks, dataset.fields) if field.default is not None}
    return CompiledDataset(dataset, checks, columns, dataset.unknown_columns is UnknownColumns.KEEP, defaults)


def _normalizer(dataset: Dataset, field: Field) -> FieldCheck:
    kind = field.type
    if kind is FieldType.DATE:
        return date_normalizer(field.formats, field.day_first)
    if kind is FieldType.DATETIME:
        return datetime_normalizer(dataset.timezone, field.formats)
    return _NORMALIZERS[kind]


_NORMALIZERS: dict[FieldType, FieldCheck] = {
    FieldType.STRING: text,  # normalize_string itself, one call less per value
    FieldType.EMAIL: normalize_email,
    FieldType.ENUM: text,  # its values are checked as a constraint
    FieldType.INTEGER: normalize_integer,
    FieldType.NUMBER: normalize_number,
    FieldType.BOOLEAN: normalize_boolean,
    FieldType.UUID: normalize_uuid,
    FieldType.JSON: normalize_json,
    FieldType.JSON_OBJECT: normalize_json_object,
}


def _constraints(field: Field) -> list[Callable[[Any], None]]:
    """A check per constraint ``field`` declares, in the order they are judged; each raises ``Invalid``."""
    found: list[Callable[[Any], None]] = []
    # A number is canonical text, compared as a Decimal. An integer is compared with the
    # bound rounded inward to an int (exact for integers, and int < int is the fast compare).
    decimal = field.type is FieldType.NUMBER
    if field.minimum is not None:
        minimum, low = field.minimum, math.ceil(field.minimum)

        def at_least(value: Any) -> None:
            if (Decimal(value) < minimum) if decimal else value < low:
                raise Invalid("below_minimum", f"{value} is less than {minimum}")

        found.append(at_least)
    if field.maximum is not None:
        maximum, high = field.maximum, math.floor(field.maximum)

        def at_most(value: Any) -> None:
            if (Decimal(value) > maximum) if decimal else value > high:
                raise Invalid("above_maximum", f"{value} is more than {maximum}")

        found.append(at_most)
    if field.min_length is not None:
        min_length = field.min_length

        def long_enough(value: Any) -> None:
            if len(value) < min_length:
                raise Invalid("too_short", f"{len(value)} characters, fewer than the minimum of {min_length}")

        found.append(long_enough)
    if field.max_length is not None:
        max_length = field.max_length

        def short_enough(value: Any) -> None:
            if len(value) > max_length:
                raise Invalid("too_long", f"{len(value)} characters, more than the maximum of {max_length}")

        found.append(short_enough)
    if field.values is not None:
        allowed = frozenset(field.values)
        listed = ", ".join(repr(value) for value in field.values[:10]) + (", ..." if len(field.values) > 10 else "")

        def listed_value(value: Any) -> None:
            if value not in allowed:
                raise Invalid("not_in_enum", f"{value[:60]!r} is not one of {listed}")

        found.append(listed_value)
    if field.pattern is not None:
        fullmatch = re.compile(field.pattern).fullmatch
        pattern = field.pattern

        def matching(value: Any) -> None:
            if fullmatch(value) is None:
                raise Invalid("pattern_mismatch", f"{value[:60]!r} does not match the pattern {pattern!r}")

        found.append(matching)
    return found


def _constrained(normalize: FieldCheck, constraints: list[Callable[[Any], None]]) -> FieldCheck:
    """``normalize``, then each of ``constraints`` on a value that is not None."""
    if not constraints:
        return normalize
    if len(constraints) == 1:  # the common case, without the loop
        (only,) = constraints

        def constrained_once(value: Any) -> Any:
            normalized = normalize(value)
            if normalized is not None:
                only(normalized)
            return normalized

        return constrained_once

    def constrained(value: Any) -> Any:
        normalized = normalize(value)
        if normalized is not None:
            for constraint in constraints:
                constraint(normalized)
        return normalized

    return constrained


def _field_check(dataset: Dataset, field: Field) -> FieldCheck:
    """``field``'s one check: normalize, then default or required, then its constraints."""
    name = field.name
    constrained = _constrained(_normalizer(dataset, field), _constraints(field))
    default = None
    if field.default is not None:
        try:
            default = constrained(field.default)
        except Invalid as invalid:
            raise InvalidDeclaration(
                f"dataset {dataset.name}: field {name}: the default {field.default!r} fails the field's own checks:"
                f" {invalid.message} ({invalid.code})"
            ) from None
    base = constrained
    if field.required:
        message = f"{name} is required"

        def required(value: Any) -> Any:
            normalized = base(value)
            if normalized is None:
                raise Invalid("required", message)
            return normalized

        return required
    if default is None:
        return base
    if isinstance(default, (dict, list)):
        return lambda value: _fresh(default) if (normalized := base(value)) is None else normalized
    return lambda value: default if (normalized := base(value)) is None else normalized


def _fresh(value: Any) -> Any:
    """A copy of a JSON default, so no two rows share one mutable value."""
    return orjson.loads(orjson.dumps(value))


def content_hash(values: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON (sorted keys, at every depth) of ``values``."""
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_row(dataset: Dataset, record: Mapping[str, Any]) -> Checked:
    """Normalize and validate ``record`` (keyed by field name; other keys are ignored).

    Every error of the row is reported, not only the first (one per field). With
    ``unknown_columns = "keep"``, a non-empty ``record["extra_columns"]`` (the unknown
    columns, as the reader read them) goes into the values, and so into the hash.
    """
    compiled = compile_dataset(dataset)
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    get = record.get
    for name, check in compiled.checks:
        try:
            values[name] = check(get(name))
        except Invalid as invalid:
            errors.append(FieldError(name, invalid.code, invalid.message))
    if compiled.keeps_unknown and (extra := get(EXTRA_COLUMNS)):
        if (error := _unstorable(extra)) is not None:
            errors.append(error)
        values[EXTRA_COLUMNS] = extra
    if errors:
        return Checked(values, None, errors)
    defaults = compiled.defaults
    if defaults:
        content = {name: value for name, value in values.items() if value is not None and value != defaults.get(name)}
    else:
        content = {name: value for name, value in values.items() if value is not None}
    try:
        return Checked(values, content_hash(content), errors)
    except orjson.JSONEncodeError as error:  # text that is not valid Unicode (lone surrogates)
        return Checked(values, None, [FieldError(None, "invalid_text", f"row is not valid Unicode: {error}")])


def _unstorable(extra: Any) -> FieldError | None:
    """Why the kept unknown columns cannot be stored in jsonb, or None."""
    try:
        orjson.dumps(extra)
    except orjson.JSONEncodeError as error:
        return FieldError(None, "invalid_json", f"the unknown columns are not storable as JSON: {error}")
    if holds_nul(extra):
        return FieldError(None, "invalid_character", "an unknown column contains a NUL character")
    return None


@attrs.frozen
class ColumnMatch:
    """How a file's columns map onto a dataset's fields."""

    #: column position -> field name, for the columns that are fields (by name or alias).
    positions: dict[int, str]
    #: The other columns, as written.
    unknown: list[str]
    duplicates: list[str]
    missing_required: list[str]
    #: column position -> name as written, for the unknown columns.
    unknown_positions: dict[int, str] = attrs.field(factory=dict)


def match_columns(dataset: Dataset, header: Iterable[str]) -> ColumnMatch:
    """Match a CSV header against the dataset's field names and aliases.

    A column naming a field already named (twice, or by its name and an alias) is a duplicate.
    """
    columns = compile_dataset(dataset).columns
    positions: dict[int, str] = {}
    unknown_positions: dict[int, str] = {}
    seen: set[str] = set()
    duplicates: list[str] = []
    for position, column in enumerate(header):
        key = column_key(column)
        field = columns.get(key)
        # An unknown column's key never equals a field name: that column would be the field.
        named = key if field is None else field
        if named in seen:
            duplicates.append(column)
        seen.add(named)
        if field is not None:
            positions[position] = field
        else:
            unknown_positions[position] = column
    missing = [name for name in dataset.required_fields if name not in seen]
    return ColumnMatch(positions, list(unknown_positions.values()), duplicates, missing, unknown_positions)
