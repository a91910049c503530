"""A draft dataset declaration inferred from a sample of a file's rows: pure, no I/O.

``infer_dataset`` looks at every sampled value of each column and picks the narrowest
type the field rules accept for all of them (booleans as words, integer, number, uuid,
date with its format, datetime, email, JSON, else string), using the same normalizers
the parser applies, so a draft accepts the sample it came from. A column is required
when no sampled row leaves it empty; a candidate key is an identifier-like column
(integer, string, UUID or email) whose sampled values are all present and distinct.
Field names are the headers made into identifiers (``First Name`` becomes
``first_name``, with the header kept as an alias).

The draft is for review: a sample cannot tell a column that is always filled from one
that happened to be, nor ``03/04/2024`` day first from month first when no day passes 12.
``declaration_toml`` writes it as TOML, the syntax ``PUT /datasets/{name}`` takes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ingestro.datasets.dates import datetime_normalizer, normalize_date
from ingestro.datasets.declarations import checked, column_key, unstructured
from ingestro.datasets.field_values import (
    Invalid,
    normalize_email,
    normalize_integer,
    normalize_json,
    normalize_number,
    normalize_uuid,
)
from ingestro.datasets.model import SYSTEM_COLUMNS, Dataset, Field, FieldType

#: Date formats tried one at a time, so that a column written one way is declared with that format.
#: Month first before day first: an ambiguous column (no day past 12) reads as the built-in default does.
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d %b %Y", "%d %B %Y")
_BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f", "on", "off"})
#: Types a candidate key may have: identifiers, not measures (a number, a date or a flag distinct in a
#: small sample is a coincidence).
_KEY_TYPES = frozenset({FieldType.INTEGER, FieldType.STRING, FieldType.UUID, FieldType.EMAIL})
_TIME = re.compile(r"\d[T ]\d{1,2}:\d{2}")
_normalize_datetime = datetime_normalizer()


@attrs.frozen
class Draft:
    """A draft declaration, and what the sample said about it."""

    dataset: Dataset
    #: Fields whose sampled values were all present and distinct, most likely first.
    candidate_keys: tuple[str, ...]
    rows_sampled: int
    #: Things the reviewer should know (a column left out, an ambiguous date order).
    notes: tuple[str, ...] = ()


def field_name(header: str, position: int) -> str:
    """``header`` as a field name: ASCII, lowercase, ``_`` for anything else; ``column_N`` when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:63]
    if not name:
        return f"column_{position + 1}"
    if name[0].isdigit():
        name = f"_{name}"[:63]
    if name in SYSTEM_COLUMNS:
        name = f"{name}_value"
    return name


def infer_dataset(name: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Draft:
    """The draft declaration of dataset ``name`` for ``rows`` (each a mapping of column to value as read).

    ``columns`` are the header names in file order. A column whose name (trimmed, any case)
    repeats an earlier one is left out, as the parser would refuse the file.
    """
    notes: list[str] = []
    kept: list[tuple[str, str]] = []  # (column as written, field name)
    every_key = {column_key(column) for column in columns}
    keys_seen: set[str] = set()
    names_taken: set[str] = set()
    for position, column in enumerate(columns):
        if column_key(column) in keys_seen:
            notes.append(f"column {column!r} repeats an earlier column and was left out")
            continue
        keys_seen.add(column_key(column))
        base = field_name(column, position)
        unique, suffix = base, 2
        # A name may not be taken, nor be how another column is written (it would match that column too).
        while unique in names_taken or (unique != column_key(column) and unique in every_key):
            unique, suffix = f"{base[:60]}_{suffix}", suffix + 1
        names_taken.add(unique)
        kept.append((column, unique))
    values: dict[str, list[Any]] = {column: [] for column, _ in kept}
    filled: dict[str, int] = dict.fromkeys(values, 0)
    count = 0
    for row in rows:
        count += 1
        for column, _ in kept:
            value = row.get(column)
            if _present(value):
                values[column].append(value)
                filled[column] += 1
    fields: list[Field] = []
    candidates: list[tuple[int, str]] = []
    for column, name_of_field in kept:
        sampled = values[column]
        kind, formats = infer_type(sampled)
        required = count > 0 and filled[column] == count
        aliases = () if column_key(column) == name_of_field else (column.strip(),)
        fields.append(Field(name_of_field, kind, required=required, aliases=aliases, formats=formats))
        if required and count > 1 and kind in _KEY_TYPES and _distinct(sampled):
            candidates.append((_key_rank(name_of_field, kind), name_of_field))
        if kind is FieldType.DATE and formats == ("%m/%d/%Y",):
            notes.append(f"field {name_of_field}: no day past 12 in the sample; read as month first (MM/DD/YYYY)")
    if not fields:
        fields.append(Field("column_1", FieldType.STRING))
        notes.append("the sample has no columns")
    dataset = checked(Dataset(name=name, fields=tuple(fields)))
    keys = tuple(name_of_field for _, name_of_field in sorted(candidates))
    return Draft(dataset, keys, count, tuple(notes))


def infer_type(values: Sequence[Any]) -> tuple[FieldType, tuple[str, ...]]:
    """The narrowest type accepting every one of ``values`` (none: string), and a date's format."""
    if not values:
        return FieldType.STRING, ()
    if any(isinstance(value, (dict, list)) for value in values):
        return FieldType.JSON, ()
    if all(isinstance(value, bool) or _boolean_word(value) for value in values):
        return FieldType.BOOLEAN, ()
    if any(isinstance(value, bool) for value in values):
        return FieldType.STRING, ()
    for kind, normalize in _SCALAR_TESTS:
        if _all_pass(normalize, values):
            return kind, ()
    texts = [value.strip() for value in values if isinstance(value, str)]
    if len(texts) == len(values):
        for pattern in DATE_FORMATS:
            if all(_parses(text, pattern) for text in texts):
                return FieldType.DATE, (pattern,)
        if _all_pass(normalize_date, texts):
            return FieldType.DATE, ()  # several of the built-in formats mixed
        if any(_TIME.search(text) for text in texts) and _all_pass(_normalize_datetime, texts):
            return FieldType.DATETIME, ()
        if _all_pass(normalize_email, texts):
            return FieldType.EMAIL, ()
        if all(text[:1] in "{[" for text in texts) and _all_pass(normalize_json, texts):
            return FieldType.JSON, ()
    return FieldType.STRING, ()


_SCALAR_TESTS: tuple[tuple[FieldType, Callable[[Any], Any]], ...] = (
    (FieldType.INTEGER, normalize_integer),
    (FieldType.NUMBER, normalize_number),
    (FieldType.UUID, normalize_uuid),
)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _boolean_word(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS


def _all_pass(normalize: Callable[[Any], Any], values: Iterable[Any]) -> bool:
    try:
        for value in values:
            normalize(value)
    except (Invalid, TypeError, ValueError):
        return False
    return True


def _parses(text: str, pattern: str) -> bool:
    try:
        datetime.strptime(text, pattern)
    except ValueError:
        return False
    return True


def _distinct(values: Sequence[Any]) -> bool:
    seen = {repr(value.strip()) if isinstance(value, str) else repr(value) for value in values}
    return len(seen) == len(values)


def _key_rank(name: str, kind: FieldType) -> int:
    """Lower is likelier a key: ``id`` itself, then ``*_id`` and UUIDs, then the rest."""
    if name == "id":
        return 0
    if name.endswith("_id") or kind is FieldType.UUID:
        return 1
    return 2


def declaration_toml(dataset: Dataset, comments: Sequence[str] = ()) -> str:
    """``dataset`` as a TOML declaration (``comments`` first, each a ``#`` line), read back by ``parse_declaration``."""
    raw = unstructured(dataset)
    lines = [f"# {line}" for comment in comments for line in comment.splitlines()]
    for key, value in raw.items():
        if key in ("fields", "migration") or _left_out(value) or (key == "table" and value == dataset.name):
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    for field in raw["fields"]:
        lines += ["", "[[fields]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in field.items() if not _left_out(value)]
    return "\n".join(lines) + "\n"


def _left_out(value: Any) -> bool:
    """Whether a declaration says nothing by leaving ``value`` out: every default is one of these."""
    return value is None or value is False or (isinstance(value, (list, tuple)) and not value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _toml_string(text: str) -> str:
    """A TOML basic string: backslash, quote and every control character escaped."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


__all__ = ["DATE_FORMATS", "Draft", "declaration_toml", "field_name", "infer_dataset", "infer_type"]
