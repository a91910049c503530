"""What a dataset declaration is: its fields, their types and constraints, its identity and version.

Immutable attrs classes and nothing else: no I/O. ``ingestro.datasets.declarations``
reads them from JSON or TOML and checks them; ``ingestro.datasets.rules`` turns them into the
per-row checks; ``ingestro.datasets.tables`` into the typed table's SQL.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import attrs

#: Column names the data tables use for bookkeeping; a field may not take one.
SYSTEM_COLUMNS = frozenset(
    {
        "content_hash",
        "schema_version",
        "extra_columns",
        "first_job_id",
        "first_line",
        "first_position",
        "last_job_id",
        "last_line",
        "last_position",
        "created_at",
        "updated_at",
    }
)
#: With ``unknown_columns = "keep"``: the key of a row's values (and the jsonb column) that holds the
#: columns the dataset does not declare, as {name as written in the file: value}.
EXTRA_COLUMNS = "extra_columns"

#: A value a declaration may give as a default: what a file could hold in a cell.
Scalar = str | int | float | bool


class FieldType(str, enum.Enum):
    STRING = "string"
    EMAIL = "email"
    INTEGER = "integer"
    #: Exact decimal; carried in events as canonical text ("12.5", never "1.25E+1").
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    #: With time zone; carried as ISO 8601 in UTC. Naive values take the dataset's ``timezone``.
    DATETIME = "datetime"
    ENUM = "enum"
    UUID = "uuid"
    #: Any JSON value.
    JSON = "json"
    #: A JSON object (``{}``) only.
    JSON_OBJECT = "json_object"


#: The PostgreSQL column type each field type is stored as.
SQL_TYPES: dict[FieldType, str] = {
    FieldType.STRING: "text",
    FieldType.EMAIL: "text",
    FieldType.INTEGER: "bigint",
    FieldType.NUMBER: "numeric",
    FieldType.BOOLEAN: "boolean",
    FieldType.DATE: "date",
    FieldType.DATETIME: "timestamptz",
    FieldType.ENUM: "text",
    FieldType.UUID: "uuid",
    FieldType.JSON: "jsonb",
    FieldType.JSON_OBJECT: "jsonb",
}


class UnknownColumns(str, enum.Enum):
    """What happens to a file's columns (JSON keys) that the dataset does not declare."""

    #: Dropped, and named in the job's ``unknown_columns``.
    IGNORE = "ignore"
    #: Stored with the row in the ``extra_columns`` jsonb column (and part of its content hash).
    KEEP = "keep"
    #: A CSV header with one fails the file; a JSON row with one is rejected (``unknown_column``).
    REJECT = "reject"


@attrs.frozen
class Field:
    name: str
    type: FieldType
    required: bool = False
    #: Taken when the value is absent or empty; given as it would be in a file, and normalized like one.
    default: Scalar | None = None
    #: Bounds of integer and number values (inclusive).
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    #: Bounds of the length of text values (string, email, enum), in characters.
    min_length: int | None = None
    max_length: int | None = None
    #: A regular expression the whole normalized text must match.
    pattern: str | None = None
    #: The allowed values: required for ``enum``, optional for ``string``. Compared exactly, after trimming.
    values: tuple[str, ...] | None = None
    #: Other names the column may have in a file (``E-mail``, ``Email Address``); matched like the name,
    #: trimmed and case-insensitively.
    aliases: tuple[str, ...] = ()
    #: Accepted formats of date and datetime values, as ``strptime`` patterns; empty: the built-in ones.
    formats: tuple[str, ...] = ()
    #: For the built-in date formats: read an ambiguous ``03/04/2024`` as day first (3 April).
    day_first: bool = False


@attrs.frozen
class Migration:
    """What a new version of a dataset declares it may do to the stored rows, beyond adding fields."""

    #: Fields removed: their columns are dropped, with their values.
    drop: tuple[str, ...] = ()
    #: Fields whose type changed: their columns are converted by PostgreSQL's cast, which must succeed
    #: for every stored value or the new version is refused.
    retype: tuple[str, ...] = ()


@attrs.frozen(cache_hash=True)  # looked up per row in caches keyed by dataset
class Dataset:
    name: str
    fields: tuple[Field, ...]
    #: The PostgreSQL table; by default the dataset's name.
    table: str = attrs.field(default=attrs.Factory(lambda self: self.name, takes_self=True))
    #: Starts at 1; each accepted change of the declaration is the next version.
    version: int = 1
    #: The natural key: rows with equal values of these fields are one row, the latest upload's
    #: (then the latest line's) content winning. Empty: identity is the content hash.
    key: tuple[str, ...] = ()
    unknown_columns: UnknownColumns = UnknownColumns.IGNORE
    #: The IANA time zone of naive datetime values.
    timezone: str = "UTC"
    #: What this version may do beyond adding fields; only meaningful in the declaration of a new version.
    migration: Migration = Migration()

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)


class UnknownDataset(LookupError):
    pass


class InvalidDeclaration(ValueError):
    """A dataset declaration that cannot be used; the message says what to change."""


class RefusedChange(InvalidDeclaration):
    """A valid declaration that cannot replace the latest version as it stands (see ``dataset_tables.evolution``)."""
