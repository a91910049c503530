"""Datasets: the declarations of what a file's rows must be and where they are stored.

A dataset is declared in JSON or TOML (one file per dataset) or through
``PUT /datasets/{name}``; the built-in ``contacts`` is a declaration file beside
this module. ``ingestro.datasets.registry`` keeps every version of every dataset
in PostgreSQL, the one source the API, the parser and the projections read.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from ingestro.datasets.declarations import NAME, checked, declaration_of, parse_declaration
from ingestro.datasets.model import (
    EXTRA_COLUMNS,
    SQL_TYPES,
    SYSTEM_COLUMNS,
    Dataset,
    Field,
    FieldType,
    InvalidDeclaration,
    Migration,
    RefusedChange,
    UnknownColumns,
    UnknownDataset,
)

__all__ = [
    "EXTRA_COLUMNS",
    "NAME",
    "SQL_TYPES",
    "SYSTEM_COLUMNS",
    "Dataset",
    "Field",
    "FieldType",
    "InvalidDeclaration",
    "Migration",
    "RefusedChange",
    "UnknownColumns",
    "UnknownDataset",
    "builtin_datasets",
    "checked",
    "declaration_of",
    "get_dataset",
    "parse_declaration",
]


@cache
def builtin_datasets() -> dict[str, Dataset]:
    """The datasets shipped with Ingestro, by name."""
    found: dict[str, Dataset] = {}
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith(".json"):
            dataset = parse_declaration(entry.read_bytes(), "json")
            found[dataset.name] = dataset
    return found


def get_dataset(name: str) -> Dataset:
    """The built-in dataset called ``name``; raise ``UnknownDataset`` if there is none."""
    try:
        return builtin_datasets()[name]
    except KeyError:
        raise UnknownDataset(name) from None
