"""Dates and datetimes as files write them, into the forms the data tables store.

A date becomes "YYYY-MM-DD". A datetime becomes ISO 8601 in UTC
("2024-03-01T12:00:00+00:00", with microseconds only when they are not zero). A
naive datetime is read in the dataset's time zone; a wall time that the zone skips
or repeats (a DST change) takes the offset from before the change (``fold=0``).

A typed value (an XLSX date cell, a Parquet date or timestamp column) is taken as it is,
whatever the field's ``formats``: a ``date`` (or a ``datetime`` at midnight, without a
zone) for a date field, a ``datetime`` (naive: a wall time in the dataset's zone) or a
``date`` (its midnight) for a datetime field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from ingestro.datasets.field_values import Invalid, text

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
DATE_FORMATS = "YYYY-MM-DD, YYYY/MM/DD, MM/DD/YYYY or D Mon YYYY"
DAY_FIRST_DATE_FORMATS = "YYYY-MM-DD, YYYY/MM/DD, DD/MM/YYYY or D Mon YYYY"
DATETIME_FORMATS = "ISO 8601, such as 2024-03-01T12:00:00Z, 2024-03-01T13:00:00+01:00 or 2024-03-01 12:00"

Normalizer = Callable[[Any], Any]


def _number(part: str) -> int:
    if not (part.isascii() and part.isdigit()):
        raise ValueError(part)
    return int(part)


def _builtin_date(found: str, day_first: bool) -> str:
    try:
        if len(found) == 10 and found[4] in "-/" and found[7] == found[4]:
            y, m, d = _number(found[:4]), _number(found[5:7]), _number(found[8:])
        elif "/" in found:
            parts = found.split("/")
            if len(parts) != 3 or len(parts[2]) != 4:
                raise ValueError
            first, second, y = (_number(p) for p in parts)
            d, m = (first, second) if day_first else (second, first)
        else:
            parts = found.split()
            if len(parts) != 3 or len(parts[2]) != 4:
                raise ValueError
            d, m, y = _number(parts[0]), _MONTHS[parts[1].lower().rstrip(".")], _number(parts[2])
        return date(y, m, d).isoformat()
    except (ValueError, KeyError):
        formats = DAY_FIRST_DATE_FORMATS if day_first else DATE_FORMATS
        raise Invalid("invalid_date", f"{found[:60]!r} is not a date ({formats})") from None


@lru_cache(maxsize=8192)
def _month_first_date(found: str) -> str:
    return _builtin_date(found, False)


@lru_cache(maxsize=8192)
def _day_first_date(found: str) -> str:
    return _builtin_date(found, True)


def typed_date(value: date) -> str:
    """A typed date as YYYY-MM-DD; a datetime only when it is a midnight without a zone."""
    if isinstance(value, datetime):
        if value.tzinfo is not None or value.time() != time():
            raise Invalid("invalid_date", f"{value.isoformat()} has a time of day or a zone: not a date")
        return value.date().isoformat()
    return value.isoformat()


def normalize_date(value: Any) -> str | None:
    """A date in one of the built-in formats (an ambiguous slash date month first), as YYYY-MM-DD."""
    # ``text`` inlined for the common case, a str without NUL: this runs for every row of many datasets.
    found: str | None
    if value.__class__ is str and "\x00" not in value:
        found = value.strip()
    elif isinstance(value, date):
        return typed_date(value)
    else:
        found = text(value)
    return _month_first_date(found) if found else None


def _strptime(found: str, formats: tuple[str, ...]) -> datetime:
    for pattern in formats:
        try:
            return datetime.strptime(found, pattern)
        except ValueError:
            continue
    raise ValueError(found)


def date_normalizer(formats: tuple[str, ...] = (), day_first: bool = False) -> Normalizer:
    """The normalizer of a date field: the built-in formats, or exactly the ``strptime`` patterns ``formats``."""
    if not formats:
        if not day_first:
            return normalize_date
        parse = _day_first_date

        def normalize_day_first(value: Any) -> str | None:
            if isinstance(value, date):
                return typed_date(value)
            found = text(value)
            return None if found is None else parse(found)

        return normalize_day_first

    @lru_cache(maxsize=8192)
    def parse_formats(found: str) -> str:
        try:
            return _strptime(found, formats).date().isoformat()
        except ValueError:
            raise Invalid("invalid_date", f"{found[:60]!r} is not a date ({', '.join(formats)})") from None

    def normalize_formats(value: Any) -> str | None:
        if isinstance(value, date):
            return typed_date(value)
        found = text(value)
        return None if found is None else parse_formats(found)

    return normalize_formats


def datetime_normalizer(zone: str = "UTC", formats: tuple[str, ...] = ()) -> Normalizer:
    """The normalizer of a datetime field; naive values are wall times in the IANA time zone ``zone``.

    Without ``formats``: ISO 8601 text (``datetime.fromisoformat``), with an offset, ``Z``,
    or naive; a date alone is its midnight. With ``formats``: exactly those ``strptime``
    patterns (``%z`` reads an offset). A JSON number is refused.
    """
    wall = ZoneInfo(zone)
    expected = ", ".join(formats) if formats else DATETIME_FORMATS

    def normalize_datetime(value: Any) -> str | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Not taken as ISO 8601's basic format (20240301), nor guessed to be seconds since 1970.
            raise Invalid("invalid_datetime", f"{value!r} is a number, not a datetime ({expected})")
        if isinstance(value, date):
            moment = value if isinstance(value, datetime) else datetime.combine(value, time())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=wall, fold=0)
            return moment.astimezone(UTC).isoformat()
        found = text(value)
        if found is None:
            return None
        try:
            if formats:
                moment = _strptime(found, formats)
            elif found.isascii():
                moment = datetime.fromisoformat(found)
            else:
                raise ValueError(found)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=wall, fold=0)
            return moment.astimezone(UTC).isoformat()
        except (ValueError, OverflowError):
            raise Invalid("invalid_datetime", f"{found[:60]!r} is not a datetime ({expected})") from None

    return normalize_datetime
