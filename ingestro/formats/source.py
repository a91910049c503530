"""What the format readers share: the row as read, the unreadable file, and what a reader learns.

Also the one place that makes text from a file safe to store: PostgreSQL text and
jsonb hold neither NUL nor lone surrogates, orjson writes no integer past 64 bits,
and a column name is shown, not kept whole.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs
import orjson

from ingestro.domain.events import FieldError

#: Unknown column names remembered per file (a hostile file may have millions).
MAX_UNKNOWN_COLUMNS = 100
#: A column name in a reason or in the job's unknown columns is cut to this many characters.
MAX_NAME_CHARS = 200
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_INT64 = (-(2**63), 2**63 - 1)


# Not frozen: one is made per row, and a frozen class's __init__ costs twice as much.
@attrs.define
class SourceRow:
    line: int
    #: Values keyed by field name (and, when the dataset keeps unknown columns and the row has some,
    #: ``extra_columns``: {name as written: value as read}); None when ``error`` says the structure is broken.
    record: dict[str, Any] | None
    #: The row as read: a CSV row's list of fields, a JSON value, an NDJSON line that is not JSON.
    raw: Any
    error: FieldError | None = None


class Unreadable(Exception):
    """The file cannot be read on from ``line`` (None: before the first row, or unknown)."""

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


class ReadAgain(Exception):
    """Bytes that do not decode came after the rows up to ``line``: read the file again, escaping them.

    Raised by a reader of a strictly decoded text in place of the ``UnicodeDecodeError``.
    """

    def __init__(self, line: int) -> None:
        super().__init__(f"undecodable bytes after line {line}")
        self.line = line


@attrs.define
class FileNotes:
    """What a reader learned about the file: its CSV header, and the columns the dataset lacks."""

    header: list[str] | None = None
    unknown_columns: list[str] = attrs.field(factory=list)

    def note_unknown(self, name: str) -> None:
        shown = clean_text(name)
        if shown not in self.unknown_columns and len(self.unknown_columns) < MAX_UNKNOWN_COLUMNS:
            self.unknown_columns.append(shown)


def clean_text(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """``text`` fit to show and store: NUL and lone surrogates as U+FFFD, cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + "…"
    return _UNSTORABLE.sub("\ufffd", text)


def named(columns: list[str], shown: int = 5) -> str:
    """A few of ``columns`` for a message, each fit to show, and how many more there are."""
    listed = ", ".join(repr(clean_text(name)) for name in columns[:shown])
    return f"{listed} and {len(columns) - shown} more" if len(columns) > shown else listed


def deeper_than(value: Any, depth: int) -> bool:
    """Whether ``value`` nests more than ``depth`` levels (a scalar is 0, ``{}`` is 1)."""
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    return depth == 0 or any(deeper_than(child, depth - 1) for child in children)


def storable(raw: Any, text_limit: int, depth_limit: int) -> Any:
    """``raw`` as jsonb can store it: unchanged when it can, else cleaned.

    Cleaning replaces NUL and lone surrogates (undecodable bytes) with U+FFFD, cuts
    strings to ``text_limit`` characters, writes integers past 64 bits and
    non-finite floats as text, and replaces what nests deeper than ``depth_limit``.
    """
    try:
        encoded = orjson.dumps(raw)
    except (orjson.JSONEncodeError, TypeError):
        return _cleaned(raw, text_limit, depth_limit, 0)
    if b"\\u0000" in encoded or len(encoded) > text_limit:
        return _cleaned(raw, text_limit, depth_limit, 0)
    return raw


def _cleaned(value: Any, text_limit: int, depth_limit: int, depth: int) -> Any:
    if isinstance(value, str):
        return clean_text(value, text_limit)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list)):
        if depth >= depth_limit:
            return f"(nested deeper than {depth_limit} levels)"
        if isinstance(value, dict):
            return {
                clean_text(str(key), text_limit): _cleaned(item, text_limit, depth_limit, depth + 1)
                for key, item in value.items()
            }
        return [_cleaned(item, text_limit, depth_limit, depth + 1) for item in value]
    return clean_text(str(value), text_limit)
