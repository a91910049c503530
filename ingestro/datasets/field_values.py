"""What each field type makes of a value from a file: the normalizers.

A normalizer takes a value as read (CSV text, a decoded JSON value, or a typed value of
an XLSX or Parquet file: ``date``, ``datetime`` and ``time`` too) and returns
the normalized value, None for an absent or empty one, or raises ``Invalid`` with a
stable error code. The values they return are the contract with the data projection:

- string, email, enum: ``str`` (trimmed; an email lowercased);
- integer: ``int`` within PostgreSQL's bigint;
- number: canonical decimal text, without exponent or trailing zeros ("12.5", "100", "0");
- boolean: ``bool``;
- date: "YYYY-MM-DD"; datetime: ISO 8601 in UTC (see ``ingestro.datasets.dates``);
- uuid: canonical lowercase hyphenated text;
- json: any JSON value; json_object: a ``dict``.

Text never holds NUL (PostgreSQL text and jsonb cannot).
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UUID = re.compile(
    r"(?:urn:uuid:)?(\{)?[0-9a-f]{8}(-?)[0-9a-f]{4}\2[0-9a-f]{4}\2[0-9a-f]{4}\2[0-9a-f]{12}(?(1)\})", re.IGNORECASE
)
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
#: PostgreSQL numeric's limits: digits before and after the decimal point.
_NUMERIC_INTEGER_DIGITS, _NUMERIC_FRACTION_DIGITS = 131072, 16383
_BOOLEANS = {
    **dict.fromkeys(("true", "yes", "y", "t", "1", "on"), True),
    **dict.fromkeys(("false", "no", "n", "f", "0", "off"), False),
}


class Invalid(Exception):
    """A value that cannot be normalized; carries the stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def text(value: Any) -> str | None:
    """Trimmed text; a JSON number becomes its text, a typed date or time its ISO 8601; empty becomes None."""
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
    if isinstance(value, (date, time)):
        return value.isoformat()
    raise Invalid("invalid_type", f"expected text, got {type(value).__name__}")


def normalize_string(value: Any) -> str | None:
    """Trimmed text; numbers become their text; empty becomes None."""
    return text(value)


def normalize_email(value: Any) -> str | None:
    # ``text`` inlined for the common case, a str without NUL: this runs for every row of most datasets.
    found = value.strip() if value.__class__ is str and "\x00" not in value else text(value)
    if not found:
        return None
    email = found.lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise Invalid("invalid_email", f"{found!r} is not a valid email address")
    return email


def normalize_integer(value: Any) -> int | None:
    if value.__class__ is str and len(value) < 19 and value.isdigit() and value.isascii():
        return int(value)  # the common case, plain digits (and within bigint), without the pattern
    number = _integer(value)
    if number is not None and not BIGINT_MIN <= number <= BIGINT_MAX:
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
    found = text(value)
    if found is None:
        return None
    if not _INTEGER.fullmatch(found):
        raise Invalid("invalid_integer", f"{found!r} is not an integer")
    digits = found.split(".", 1)[0]
    if len(digits) > 20:  # past any 64-bit value; also keeps int() off huge inputs
        raise Invalid("out_of_range", f"{found[:40]}... does not fit in a 64-bit integer")
    return int(digits)


def normalize_number(value: Any) -> str | None:
    """The exact decimal as canonical text: no exponent, no trailing zeros, "0" for any zero."""
    if isinstance(value, bool):
        raise Invalid("invalid_number", f"expected a number, got {value!r}")
    found: str | None
    if isinstance(value, int):
        found = str(value)
    elif isinstance(value, float):
        found = repr(value)  # the shortest text that reads back as this double
    elif isinstance(value, Decimal):
        found = str(value)
    else:
        found = text(value)
    if found is None:
        return None
    if not _NUMBER.fullmatch(found):
        raise Invalid("invalid_number", f"{found[:40]!r} is not a number")
    try:
        number = Decimal(found)
    except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
        raise Invalid("invalid_number", f"{found[:40]!r} is not a number") from None
    if number.is_zero():
        return "0"
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite: the pattern admits no NaN or Infinity
    # Checked before formatting: "1e999999999" would otherwise be written out digit by digit.
    if len(digits) + exponent > _NUMERIC_INTEGER_DIGITS or -exponent > _NUMERIC_FRACTION_DIGITS + len(digits):
        raise Invalid("out_of_range", f"{found[:40]} is past the range of a PostgreSQL numeric")
    canonical = format(number, "f")
    if "." in canonical:
        canonical = canonical.rstrip("0").rstrip(".")
        if len(canonical.partition(".")[2]) > _NUMERIC_FRACTION_DIGITS:
            raise Invalid("out_of_range", f"{found[:40]} has more decimals than a PostgreSQL numeric holds")
    return canonical


def normalize_boolean(value: Any) -> bool | None:
    """true/false, yes/no, y/n, t/f, 1/0, on/off in any case; JSON true/false and 0/1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value in (0, 1):
            return value == 1
        raise Invalid("invalid_boolean", f"{value} is not a boolean (0 or 1)")
    if isinstance(value, str):
        found = text(value)
        if found is None:
            return None
        try:
            return _BOOLEANS[found.lower()]
        except KeyError:
            expected = "true/false, yes/no, 1/0, on/off"
            raise Invalid("invalid_boolean", f"{found[:40]!r} is not a boolean ({expected})") from None
    if value is None:
        return None
    raise Invalid("invalid_boolean", f"expected a boolean, got {type(value).__name__}")


def normalize_uuid(value: Any) -> str | None:
    """Canonical lowercase hyphenated text; accepts any case, no hyphens, braces or a urn:uuid: prefix."""
    found = text(value)
    if found is None:
        return None
    if not _UUID.fullmatch(found):
        raise Invalid("invalid_uuid", f"{found[:60]!r} is not a UUID")
    hexdigits = re.sub(r"[^0-9a-f]", "", found.lower().removeprefix("urn:uuid:"))
    return f"{hexdigits[:8]}-{hexdigits[8:12]}-{hexdigits[12:16]}-{hexdigits[16:20]}-{hexdigits[20:]}"


def _parsed(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Invalid("invalid_json", "not valid JSON") from None


def _may_hold_nul(json_text: str) -> bool:
    """Whether a value orjson read from ``json_text`` may fail ``storable_json``.

    What orjson reads, it writes (it reads no lone surrogate, no integer past 64 bits, no
    infinity), and a NUL in JSON text can only be written as an escape.
    """
    return "\\u0000" in json_text


def normalize_json(value: Any) -> Any:
    """Any JSON value; text is parsed as JSON; empty text (or JSON null) becomes None."""
    if isinstance(value, str):
        if not value.strip():
            return None
        parsed = _parsed(value)
        return storable_json(parsed) if _may_hold_nul(value) else parsed
    return storable_json(value)


def normalize_json_object(value: Any) -> dict[str, Any] | None:
    """A JSON object, or text holding one; empty becomes None, and anything else (JSON null too) is refused."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parsed = isinstance(value, str)
    found = _parsed(value) if parsed else value
    if not isinstance(found, dict):
        raise Invalid("invalid_json", f"expected a JSON object, got {type(found).__name__}")
    if parsed and not _may_hold_nul(value):
        return found
    storable: dict[str, Any] = storable_json(found)
    return storable


def storable_json(value: Any) -> Any:
    """``value`` itself if jsonb can store it, else Invalid (invalid_json or invalid_character)."""
    if value is None or isinstance(value, bool):
        return value
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as error:  # e.g. a lone surrogate or a huge integer
        raise Invalid("invalid_json", f"not storable as JSON: {error}") from None
    if holds_nul(value):  # jsonb cannot store \u0000
        raise Invalid("invalid_character", "JSON contains a NUL character")
    return value


def holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False
