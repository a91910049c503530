"""The row rules: normalize, validate and hash one row of a dataset.

Pure functions over plain values: no I/O, no clock. ``compile_dataset`` resolves a
declaration once into one function that checks every field (normalize by type, then
the constraints the field declares, then required or default); ``check_row`` runs it
over a record (``CompiledDataset.cells_check``: the same check over a CSV row's cells, by
the positions its header gives). A row is accepted when every field passes; its content
hash is the SHA-256 of the canonical JSON (sorted keys) of its content: the normalized values that
are neither null nor their field's default, plus, with ``unknown_columns = "keep"``,
the unknown columns under ``extra_columns`` when a row has any. Leaving out what an
empty value becomes keeps a row's identity when the dataset gains an optional field:
the rows stored before and the same rows uploaded again hash alike.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

import attrs
import orjson

from ingestro.datasets import EXTRA_COLUMNS, Dataset, Field, FieldType, InvalidDeclaration, UnknownColumns
from ingestro.datasets.column_maps import IGNORED, ColumnMap, mapped_columns
from ingestro.datasets.dates import DATE_FORMATS, date_normalizer, datetime_normalizer, normalize_date
from ingestro.datasets.declarations import column_key
from ingestro.datasets.field_values import (
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
from ingestro.datasets.patterns import fullmatcher
from ingestro.domain.events import FieldError

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

#: A field's normalizer: the value as read in, the normalized value out, or ``Invalid``.
FieldCheck = Callable[[Any], Any]
#: What a row check gives: the normalized values, the content hash (None if rejected) and the errors.
RowOutcome = tuple[dict[str, Any], str | None, list[FieldError]]
#: A row (a record keyed by field name, or a CSV row's cells) -> its outcome.
RowCheck = Callable[[Any], RowOutcome]


@attrs.frozen
class Checked:
    """The outcome of checking one row: normalized values and hash, or errors."""

    values: dict[str, Any]
    content_hash: str | None
    errors: list[FieldError]


@attrs.frozen
class CompiledDataset:
    """A dataset's rules, resolved once so the per-row work is one call."""

    dataset: Dataset
    #: Checks a record keyed by field name (see ``_row_check``); the parser's hot path for JSON rows.
    check: RowCheck
    #: ``column_key`` of each field's name and aliases -> the field's name.
    columns: dict[str, str]
    #: Whether a record's ``extra_columns`` go into the row (``unknown_columns = "keep"``).
    keeps_unknown: bool
    #: The normalized default of each field that has one.
    defaults: dict[str, Any]

    def cells_check(self, positions: Mapping[int, str], kept: Mapping[int, str]) -> RowCheck:
        """``check`` for CSV rows by position, with no record made: the same outcome as ``check`` gives
        the record of the row's cells.

        ``positions``: column position -> field name; ``kept``: position -> name as written, of the
        unknown columns that go with each row under ``extra_columns``.
        """
        at = {name: position for position, name in positions.items()}
        layout = tuple(at.get(field.name) for field in self.dataset.fields)
        return _cells_check(self.dataset, layout, tuple(kept.items()))


@cache
def compile_dataset(dataset: Dataset) -> CompiledDataset:
    """The checks of ``dataset``; raises ``InvalidDeclaration`` if a field's default fails its own checks."""
    check, defaults = _row_check(dataset)
    columns = {
        column_key(spelling): field.name for field in dataset.fields for spelling in (field.name, *field.aliases)
    }
    return CompiledDataset(dataset, check, columns, dataset.unknown_columns is UnknownColumns.KEEP, defaults)


# Per CSV header layout; bounded, as every upload may bring another header.
@lru_cache(maxsize=256)
def _cells_check(dataset: Dataset, layout: tuple[int | None, ...], kept: tuple[tuple[int, str], ...]) -> RowCheck:
    return _row_check(dataset, layout, kept)[0]


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
        matches = fullmatcher(field.pattern)
        pattern = field.pattern

        def matching(value: Any) -> None:
            if not matches(value):
                raise Invalid("pattern_mismatch", f"{value[:60]!r} does not match the pattern {pattern!r}")

        found.append(matching)
    return found


def _default(dataset: Dataset, field: Field, normalize: FieldCheck, constraints: list[Callable[[Any], None]]) -> Any:
    """``field``'s default, normalized and checked; None when it has none."""
    if field.default is None:
        return None
    try:
        default = normalize(field.default)
        if default is not None:
            for constraint in constraints:
                constraint(default)
    except Invalid as invalid:
        raise InvalidDeclaration(
            f"dataset {dataset.name}: field {field.name}: the default {field.default!r} fails the field's own checks:"
            f" {invalid.message} ({invalid.code})"
        ) from None
    return default


# The row check is one function generated per dataset (once, by compile_dataset) from the
# blocks below, because the general form (a loop over the fields, each value passed through
# closures for required, constraints and the normalizer) spent more of its time in calls
# than in checking: this is the parser's hot path. The source holds only names made here
# from field positions; what a block calls and compares with is bound in its namespace.
# Per field, in declared order: read (from a record by name, or from a CSV row by a
# position known from its header: no record is made), normalize, then the constraints on
# a value that is not None, then required or the default; the value goes into ``values``
# and, unless it is None or the default, into ``content`` (what the hash covers); an
# ``Invalid`` is the field's one error. ``outcome`` adds the kept unknown columns and hashes.
_ROW_CHECK = """\
def check(row):
{prologue}    values = {{}}
    content = {{}}
    errors = []
{blocks}    return outcome(values, content, errors, {extra})
"""
_BY_NAME = "    get = row.get\n"
_FIELD = """\
    try:
        value = {read}
{normalize}{constrain}{complete}
    except Invalid as invalid:
        errors.append(FieldError(name_{i}, invalid.code, invalid.message))
"""
# ``text`` inlined for the common case, a str without NUL (strip() never removes a NUL).
_TEXT = """\
        if value.__class__ is str and "\\x00" not in value:
            value = value.strip() or None
        else:
            value = text(value)
"""
_NORMALIZE = "        value = normalize_{i}(value)\n"
_CONSTRAIN = "        if value is not None:\n{calls}"
_REQUIRED = """\
        if value is None:
            raise Invalid("required", required_{i})
        values[name_{i}] = content[name_{i}] = value"""
_OPTIONAL = """\
        values[name_{i}] = value
        if value is not None:
            content[name_{i}] = value"""
_DEFAULTED = """\
        if value is None:
            value = {default}
        values[name_{i}] = value
        if value != default_{i}:
            content[name_{i}] = value"""


def _row_check(
    dataset: Dataset, layout: tuple[int | None, ...] | None = None, kept: tuple[tuple[int, str], ...] = ()
) -> tuple[RowCheck, dict[str, Any]]:
    """The generated check of a row of ``dataset`` (see above), and the fields' normalized defaults.

    ``layout`` None: the row is a record keyed by field name. Else it is a CSV row's cells, field i at
    position ``layout[i]`` (None: no column), and ``kept`` the (position, name as written) of the
    unknown columns that go with it under ``extra_columns``.
    """
    scope: dict[str, Any] = {
        "Invalid": Invalid,
        "FieldError": FieldError,
        "text": text,
        "fresh": _fresh,
        "outcome": _outcome,
    }
    blocks = []
    defaults: dict[str, Any] = {}
    for i, field in enumerate(dataset.fields):
        normalize = _normalizer(dataset, field)
        constraints = _constraints(field)
        default = _default(dataset, field, normalize, constraints)
        scope[f"name_{i}"] = field.name
        scope[f"normalize_{i}"] = normalize
        calls = ""
        for j, constraint in enumerate(constraints):
            scope[f"constraint_{i}_{j}"] = constraint
            calls += f"            constraint_{i}_{j}(value)\n"
        if field.required:
            scope[f"required_{i}"] = f"{field.name} is required"
            complete = _REQUIRED  # a default too is refused by the declarations (ingestro.datasets.declarations)
        elif default is not None:
            scope[f"default_{i}"] = default
            # A JSON default is copied, so no two rows (nor ``defaults``) share one mutable value.
            mutable = isinstance(default, (dict, list))
            defaults[field.name] = _fresh(default) if mutable else default
            complete = _DEFAULTED.replace("{default}", f"fresh(default_{i})" if mutable else f"default_{i}")
        else:
            complete = _OPTIONAL
        position = None if layout is None else layout[i]
        read = f"get(name_{i})" if layout is None else "None" if position is None else f"row[{int(position)}]"
        blocks.append(
            _FIELD.format(
                i=i,
                read=read,
                normalize=_TEXT if normalize is text else _NORMALIZE.format(i=i),
                constrain=_CONSTRAIN.format(calls=calls) if calls else "",
                complete=complete.format(i=i),
            )
        )
    extra = "None"
    if layout is None and dataset.unknown_columns is UnknownColumns.KEEP:
        scope["EXTRA_COLUMNS"] = EXTRA_COLUMNS
        extra = "get(EXTRA_COLUMNS)"
    elif kept:
        for j, (_, name) in enumerate(kept):
            scope[f"kept_{j}"] = name
        extra = "{" + ", ".join(f"kept_{j}: row[{int(position)}]" for j, (position, _) in enumerate(kept)) + "}"
    source = _ROW_CHECK.format(prologue=_BY_NAME if layout is None else "", blocks="".join(blocks), extra=extra)
    exec(source, scope)  # noqa: S102 - our own source, see above
    check: RowCheck = scope["check"]
    return check, defaults


def _outcome(values: dict[str, Any], content: dict[str, Any], errors: list[FieldError], extra: Any) -> RowOutcome:
    """A row's outcome once its fields are checked; ``extra``: its kept unknown columns, if any."""
    if extra:
        if (error := _unstorable(extra)) is not None:
            errors.append(error)
        values[EXTRA_COLUMNS] = content[EXTRA_COLUMNS] = extra
    if errors:
        return values, None, errors
    try:
        return values, content_hash(content), errors
    except orjson.JSONEncodeError as error:  # text that is not valid Unicode (lone surrogates)
        return values, None, [FieldError(None, "invalid_text", f"row is not valid Unicode: {error}")]


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
    return Checked(*compile_dataset(dataset).check(record))


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


def match_columns(dataset: Dataset, header: Iterable[str], column_map: ColumnMap | None = None) -> ColumnMatch:
    """Match a CSV header against the dataset's field names and aliases, ``column_map`` applied first.

    A column naming a field already named (twice, or by its name and an alias) is a duplicate. A column
    the mapping ignores is neither a field nor unknown.
    """
    columns = mapped_columns(compile_dataset(dataset).columns, column_map)
    positions: dict[int, str] = {}
    unknown_positions: dict[int, str] = {}
    seen: set[str] = set()
    duplicates: list[str] = []
    for position, column in enumerate(header):
        key = column_key(column)
        field = columns.get(key)
        if field == IGNORED:
            continue
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
