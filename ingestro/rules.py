"""The row rules: normalize, validate and hash one row of a dataset.

Pure functions over plain values: no I/O, no clock. A row is accepted when
every field normalizes without error; its content hash is the SHA-256 of the
canonical JSON (sorted keys) of the normalized values, every declared field
present and an absent or empty optional field as null.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from functools import cache, lru_cache
from typing import Any

import attrs
import orjson

from ingestro.datasets import Dataset, FieldType
from ingestro.events import FieldError

_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"), ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
DATE_FORMATS = "YYYY-MM-DD, YYYY/MM/DD, MM/DD/YYYY or D Mon YYYY"


class Invalid(Exception):
    """A value that cannot be normalized; carries the stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class Checked:
    """The outcome of checking one row: normalized values and hash, or errors."""

    values: dict[str, Any]
    content_hash: str | None
    errors: list[FieldError]


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL; refusing the row beats failing the batch.
            raise Invalid("invalid_character", "text contains a NUL character")
        return value or None
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise Invalid("invalid_type", f"expected text, got {type(value).__name__}")


def normalize_string(value: Any) -> str | None:
    """Trimmed text; numbers become their text; empty becomes None."""
    return _text(value)


def normalize_email(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    email = text.lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise Invalid("invalid_email", f"{text!r} is not a valid email address")
    return email


def normalize_integer(value: Any) -> int | None:
    number = _integer(value)
    if number is not None and not _BIGINT_MIN <= number <= _BIGINT_MAX:
        raise Invalid("out_of_range", f"{number} does not fit in a 64-bit integer")
    return number


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        raise Invalid("invalid_integer", f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise Invalid("invalid_integer", f"{value!r} is not a whole number")
    text = _text(value)
    if text is None:
        return None
    if not _INTEGER.fullmatch(text):
        raise Invalid("invalid_integer", f"{text!r} is not an integer")
    digits = text.split(".", 1)[0]
    if len(digits) > 20:  # past any 64-bit value; also keeps int() off huge inputs
        raise Invalid("out_of_range", f"{text[:40]}... does not fit in a 64-bit integer")
    return int(digits)


def _number(part: str) -> int:
    if not (part.isascii() and part.isdigit()):
        raise ValueError(part)
    return int(part)


@lru_cache(maxsize=8192)
def _parse_date(text: str) -> str:
    try:
        if len(text) == 10 and text[4] in "-/" and text[7] == text[4]:
            y, m, d = _number(text[:4]), _number(text[5:7]), _number(text[8:])
        elif "/" in text:
            parts = text.split("/")
            if len(parts) != 3 or len(parts[2]) != 4:
                raise ValueError
            m, d, y = (_number(p) for p in parts)
        else:
            parts = text.split()
            if len(parts) != 3 or len(parts[2]) != 4:
                raise ValueError
            d, m, y = _number(parts[0]), _MONTHS[parts[1].lower().rstrip(".")], _number(parts[2])
        return date(y, m, d).isoformat()
    except (ValueError, KeyError):
        raise Invalid("invalid_date", f"{text!r} is not a date ({DATE_FORMATS})") from None


def normalize_date(value: Any) -> str | None:
    text = _text(value)
    return None if text is None else _parse_date(text)


def normalize_json_object(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Invalid("invalid_json", "not valid JSON") from None
    if not isinstance(value, dict):
        raise Invalid("invalid_json", f"expected a JSON object, got {type(value).__name__}")
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as error:  # e.g. a lone surrogate or a huge integer
        raise Invalid("invalid_json", f"not storable as JSON: {error}") from None
    if _holds_nul(value):  # jsonb cannot store \u0000
        raise Invalid("invalid_character", "JSON contains a NUL character")
    return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


NORMALIZERS: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.STRING: _text,  # normalize_string itself, one call less per value
    FieldType.EMAIL: normalize_email,
    FieldType.INTEGER: normalize_integer,
    FieldType.DATE: normalize_date,
    FieldType.JSON_OBJECT: normalize_json_object,
}


@attrs.frozen
class _FieldCheck:
    """A field's rules, resolved once per dataset so the per-row loop does no lookups."""

    name: str
    normalize: Callable[[Any], Any]
    required: bool
    minimum: int | None


@cache
def _checks(dataset: Dataset) -> tuple[_FieldCheck, ...]:
    return tuple(_FieldCheck(f.name, NORMALIZERS[f.type], f.required, f.minimum) for f in dataset.fields)


def content_hash(values: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON (sorted keys, at every depth) of ``values``."""
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_row(dataset: Dataset, record: Mapping[str, Any]) -> Checked:
    """Normalize and validate ``record`` (keyed by field name; other keys are ignored).

    Every error of the row is reported, not only the first.
    """
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    get = record.get
    for check in _checks(dataset):
        try:
            value = check.normalize(get(check.name))
            if value is None:
                if check.required:
                    raise Invalid("required", f"{check.name} is required")
            elif check.minimum is not None and value < check.minimum:
                raise Invalid("below_minimum", f"{value} is less than {check.minimum}")
            values[check.name] = value
        except Invalid as invalid:
            errors.append(FieldError(check.name, invalid.code, invalid.message))
    if errors:
        return Checked(values, None, errors)
    try:
        return Checked(values, content_hash(values), errors)
    except orjson.JSONEncodeError as error:  # text that is not valid Unicode (lone surrogates)
        return Checked(values, None, [FieldError(None, "invalid_text", f"row is not valid Unicode: {error}")])


def column_key(name: str) -> str:
    """How a header or JSON key is compared with field names: case-insensitive, trimmed."""
    return name.strip().lower()


@attrs.frozen
class ColumnMatch:
    """How a file's columns map onto a dataset's fields."""

    #: column position -> field name, for the columns that are fields.
    positions: dict[int, str]
    unknown: list[str]
    duplicates: list[str]
    missing_required: list[str]


def match_columns(dataset: Dataset, header: Iterable[str]) -> ColumnMatch:
    """Match a CSV header against the dataset's fields."""
    fields = set(dataset.field_names)
    positions: dict[int, str] = {}
    seen: set[str] = set()
    unknown: list[str] = []
    duplicates: list[str] = []
    for position, column in enumerate(header):
        key = column_key(column)
        if key in seen:
            duplicates.append(column)
        seen.add(key)
        if key in fields:
            positions[position] = key
        else:
            unknown.append(column)
    missing = [name for name in dataset.required_fields if name not in seen]
    return ColumnMatch(positions, unknown, duplicates, missing)
