"""Dataset declarations: which fields a dataset has, their types and constraints.

Datasets are data (JSON files beside this module), loaded into immutable attrs
classes; the parser, the projections and the API all read the same declaration.
"""

from __future__ import annotations

import enum
from functools import cache
from importlib import resources

import attrs
import cattrs
import orjson

#: Column names the data tables use for bookkeeping; a field may not take one.
SYSTEM_COLUMNS = frozenset(
    {"content_hash", "first_job_id", "first_line", "last_job_id", "last_line", "created_at", "updated_at"}
)


class FieldType(str, enum.Enum):
    STRING = "string"
    EMAIL = "email"
    INTEGER = "integer"
    DATE = "date"
    JSON_OBJECT = "json_object"


#: The PostgreSQL column type each field type is stored as.
SQL_TYPES: dict[FieldType, str] = {
    FieldType.STRING: "text",
    FieldType.EMAIL: "text",
    FieldType.INTEGER: "bigint",
    FieldType.DATE: "date",
    FieldType.JSON_OBJECT: "jsonb",
}


@attrs.frozen
class Field:
    name: str
    type: FieldType
    required: bool = False
    minimum: int | None = None


@attrs.frozen(cache_hash=True)  # looked up per row in caches keyed by dataset
class Dataset:
    name: str
    table: str
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


class UnknownDataset(LookupError):
    pass


def _check(dataset: Dataset) -> Dataset:
    clash = SYSTEM_COLUMNS.intersection(dataset.field_names)
    if clash:
        raise ValueError(f"dataset {dataset.name}: field names {sorted(clash)} are reserved")
    if len(set(dataset.field_names)) != len(dataset.fields):
        raise ValueError(f"dataset {dataset.name}: field names repeat")
    return dataset


@cache
def builtin_datasets() -> dict[str, Dataset]:
    """The datasets shipped with Ingestro, by name."""
    found: dict[str, Dataset] = {}
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith(".json"):
            dataset = _check(cattrs.structure(orjson.loads(entry.read_bytes()), Dataset))
            found[dataset.name] = dataset
    return found


def get_dataset(name: str) -> Dataset:
    """The dataset called ``name``; raise ``UnknownDataset`` if there is none."""
    try:
        return builtin_datasets()[name]
    except KeyError:
        raise UnknownDataset(name) from None
