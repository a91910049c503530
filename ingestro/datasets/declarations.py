"""Read a dataset declaration (JSON or TOML) into a ``Dataset``, refusing what cannot work.

Pure: text in, ``Dataset`` or ``InvalidDeclaration`` out. Every refusal names the
field and what to change. What needs the rules (a default that does not pass its
own field's checks) is checked by ``ingestro.datasets.rules.compile_dataset``.
"""

from __future__ import annotations

import json
import re
import tomllib
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cattrs

from ingestro.datasets.declaration_bounds import bounded_text, bounded_value
from ingestro.datasets.model import (
    Dataset,
    Field,
    FieldType,
    InvalidDeclaration,
    Scalar,
)
from ingestro.datasets.patterns import pattern_problem
from ingestro.datasets.reserved import column_refusal, table_refusal

#: Names of datasets, tables and fields: lowercase SQL identifiers, so no quoting surprises.
NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: Integers a declaration may hold (lengths, defaults): what a bigint holds, and JSON in PostgreSQL carries.
INT64 = (-(1 << 63), (1 << 63) - 1)
#: Versions are an ``integer`` column.
MAX_VERSION = (1 << 31) - 1
#: What PostgreSQL's ``numeric`` holds: up to 131072 digits before the point, 16383 after.
_NUMERIC_DIGITS = (131072, 16383)
_TEXT_TYPES = {FieldType.STRING, FieldType.EMAIL, FieldType.ENUM}
_NUMERIC_TYPES = {FieldType.INTEGER, FieldType.NUMBER}
_DATE_TYPES = {FieldType.DATE, FieldType.DATETIME}


class RefusedNumber(ValueError):
    """A number (or what should be one) that a declaration cannot hold, or not exactly; the message says why."""


def _decimal(value: Any, _: type) -> Decimal:
    """A bound (minimum, maximum): exact, as written (declarations are parsed without binary floats)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise RefusedNumber(f"expected a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RefusedNumber(f"expected a number, got {value!r}") from None
    if not number.is_finite():
        raise RefusedNumber(f"expected a finite number, got {value!r}")
    before, after = _NUMERIC_DIGITS
    if number and (number.adjusted() >= before or -number.as_tuple().exponent > after):  # type: ignore[operator]
        raise RefusedNumber(f"{value} is out of range: more digits than PostgreSQL's numeric holds")
    return number


def _integer(value: Any, _: type) -> int:
    """A count (a length, a version): a whole number within 64 bits."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RefusedNumber(f"expected a whole number, got {value!r}")
    if not INT64[0] <= value <= INT64[1]:
        raise RefusedNumber(f"{value} is out of range: at most 64 bits")
    return value


def _scalar(value: Any, _: type) -> Scalar | None:
    if isinstance(value, Decimal):  # JSON and TOML decimals are read exact: keep those a float holds exactly
        if not value.is_finite() or Decimal(repr(float(value))) != value:
            raise RefusedNumber(f'default {value} is not exactly a binary number; give it as text: "{value}"')
        return float(value)
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"a default must be text, a number or a boolean, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        raise RefusedNumber(f'default {value} is out of range: at most 64 bits; give it as text: "{value}"')
    return value


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_structure_hook(Decimal, _decimal)
_converter.register_structure_hook(int, _integer)
_converter.register_structure_hook(bool, lambda value, _: bool(value))  # as before: not the hook of int
_converter.register_structure_hook_func(lambda kind: kind == (Scalar | None), _scalar)


def _refusal(error: BaseException, kind: type | None) -> str:
    """How a value cattrs could not structure is told: ours say why; the others, what was expected."""
    if isinstance(error, RefusedNumber):
        return str(error)
    return cattrs.v.format_exception(error, kind)


def column_key(name: str) -> str:
    """How a header or JSON key is compared with field names and aliases: case-insensitive, trimmed."""
    return name.strip().lower()


def decoded(text: str | bytes, syntax: str = "json") -> Any:
    """The JSON or TOML value of ``text`` (``syntax``: "json" or "toml"), not yet checked as a declaration.

    Text past the bounds of ``ingestro.datasets.declaration_bounds`` is refused before it is parsed.
    """
    text = bounded_text(text, syntax)
    try:
        # Numbers with a fraction as Decimal, integers as int: exact, never through a binary float.
        if syntax == "toml":
            return tomllib.loads(text, parse_float=Decimal)
        if syntax == "json":
            return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # TOMLDecodeError, JSONDecodeError too
        raise InvalidDeclaration(f"not valid {syntax.upper()}: {error}") from None
    raise InvalidDeclaration(f"declarations are JSON or TOML, not {syntax!r}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a declaration may hold")


def parse_declaration(text: str | bytes, syntax: str = "json") -> Dataset:
    """The dataset declared by ``text`` (``syntax``: "json" or "toml")."""
    return declaration_of(decoded(text, syntax))


def declaration_of(raw: Any) -> Dataset:
    """The dataset declared by the decoded JSON/TOML value ``raw``."""
    if not isinstance(raw, dict):
        raise InvalidDeclaration("a declaration is an object with at least name and fields")
    try:
        dataset = _converter.structure(bounded_value(raw), Dataset)
    except cattrs.BaseValidationError as error:
        raise InvalidDeclaration("; ".join(_messages(error))) from None
    return checked(dataset)


def _messages(error: BaseException) -> list[str]:
    if not isinstance(error, cattrs.BaseValidationError):
        return [str(error)]
    notes = cattrs.transform_error(error, format_exception=_refusal)
    return [note.replace("$.", "").replace(" @ $", "") for note in notes]


def checked(dataset: Dataset) -> Dataset:
    """``dataset`` itself, once every rule a declaration must follow holds; else InvalidDeclaration."""
    problems: list[str] = []
    for what, name in (("dataset name", dataset.name), ("table", dataset.table)):
        if not NAME.fullmatch(name):
            problems.append(f"{what} {name!r} must be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63)")
    if refusal := table_refusal(dataset.table):
        problems.append(f"{refusal}; choose another table name")
    if not 1 <= dataset.version <= MAX_VERSION:
        problems.append(f"version starts at 1 and is at most {MAX_VERSION}")
    if not dataset.fields:
        problems.append("a dataset declares at least one field")
    try:
        ZoneInfo(dataset.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone {dataset.timezone!r} is not an IANA time zone such as 'Europe/Paris'")
    seen: dict[str, str] = {}
    for field in dataset.fields:
        problems.extend(_field_problems(field))
        for spelling in (field.name, *field.aliases):
            key = column_key(spelling)
            if key in seen and seen[key] != field.name:
                problems.append(f"field {field.name}: {spelling!r} already names field {seen[key]}")
            elif key in seen and spelling == field.name:
                problems.append(f"field {field.name} is declared twice")
            seen[key] = field.name
    names = set(dataset.field_names)
    for name in dataset.key:
        if name not in names:
            problems.append(f"key field {name!r} is not a declared field")
        elif not dataset.field(name).required:
            problems.append(f"key field {name!r} must be required: a row without its key has no identity")
    if len(set(dataset.key)) != len(dataset.key):
        problems.append("key names a field twice")
    for name in dataset.migration.retype:
        if name not in names:
            problems.append(f"migration.retype names {name!r}, which this version does not declare")
    for name in dataset.migration.drop:
        if name in names:
            problems.append(f"migration.drop names {name!r}, which this version still declares")
    if problems:
        raise InvalidDeclaration(f"dataset {dataset.name}: " + "; ".join(problems))
    return dataset


def _field_problems(field: Field) -> list[str]:
    problems: list[str] = []
    say = f"field {field.name}:".__add__
    if not NAME.fullmatch(field.name):
        problems.append(say(" the name must be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63)"))
    if refusal := column_refusal(field.name):
        problems.append(say(f" {refusal}"))
    if field.type is FieldType.ENUM and not field.values:
        problems.append(say(" an enum lists its allowed values"))
    if field.values is not None and field.type not in (FieldType.ENUM, FieldType.STRING):
        problems.append(say(" allowed values apply to enum and string fields"))
    if (field.minimum is not None or field.maximum is not None) and field.type not in _NUMERIC_TYPES:
        problems.append(say(" minimum and maximum apply to integer and number fields"))
    if field.type is FieldType.INTEGER and any(
        bound is not None and not INT64[0] <= bound <= INT64[1] for bound in (field.minimum, field.maximum)
    ):
        problems.append(say(" minimum and maximum of an integer field are within 64 bits, as its values"))
    if field.minimum is not None and field.maximum is not None and field.minimum > field.maximum:
        problems.append(say(" minimum is greater than maximum"))
    if (field.min_length is not None or field.max_length is not None) and field.type not in _TEXT_TYPES:
        problems.append(say(" min_length and max_length apply to string, email and enum fields"))
    if field.min_length is not None and field.max_length is not None and field.min_length > field.max_length:
        problems.append(say(" min_length is greater than max_length"))
    if any(bound is not None and bound < 0 for bound in (field.min_length, field.max_length)):
        problems.append(say(" lengths are not negative"))
    if field.pattern is not None:
        if field.type not in _TEXT_TYPES:
            problems.append(say(" a pattern applies to string, email and enum fields"))
        elif (problem := pattern_problem(field.pattern, field.max_length)) is not None:
            problems.append(say(f" {problem}"))
    if (field.formats or field.day_first) and field.type not in _DATE_TYPES:
        problems.append(say(" formats and day_first apply to date and datetime fields"))
    if field.formats and field.day_first:
        problems.append(say(" day_first applies to the built-in formats; with formats, write the order in them"))
    if field.required and field.default is not None:
        problems.append(say(" a required field with a default is never missing; make it optional"))
    return problems


_converter.register_unstructure_hook(Decimal, str)


def unstructured(dataset: Dataset) -> dict[str, Any]:
    """``dataset`` as the JSON value that declares it (what ``declaration_of`` reads back)."""
    raw: dict[str, Any] = _converter.unstructure(dataset)
    return raw
