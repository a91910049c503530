"""Every version of every dataset, kept in PostgreSQL (table ``datasets``), and their typed tables.

``declare`` is the one way a dataset comes to exist or change: it checks the
declaration, creates or alters the typed table and records the new version in
one transaction, so a table never differs from the latest declaration. Declaring
is serialized by an advisory lock; the ALTERs lock the table, so a projection
transaction never sees a half-changed one.

``DatasetRegistry`` is what the API, the parser and the projections read: the
latest version by name, or a given version (versions never change, so those are
cached for the life of the process).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import attrs

from ingestro.datasets import (
    Dataset,
    InvalidDeclaration,
    Migration,
    RefusedChange,
    UnknownDataset,
    builtin_datasets,
    declaration_of,
    parse_declaration,
)
from ingestro.datasets.declaration_bounds import MAX_BYTES
from ingestro.datasets.declarations import unstructured
from ingestro.datasets.rules import compile_dataset
from ingestro.datasets.tables import DATA_SCHEMA, create_table, evolution, missing_system_columns, same_declaration

log = logging.getLogger(__name__)

_DECLARE_LOCK = 0x1A6E58  # advisory lock: one declaration at a time, over every process
#: The bookkeeping columns that tell a table Ingestro made for a dataset from any other table.
_DATASET_TABLE_MARKS = {"content_hash", "first_job_id"}
#: Declaration files in a datasets directory, by suffix.
SYNTAXES = {".json": "json", ".toml": "toml"}

#: Where a read may run: the pool, or a connection inside the caller's transaction.
Queryable: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


@attrs.frozen
class Declared:
    """What ``declare`` did: ``outcome`` is "created", "evolved" or "unchanged"."""

    dataset: Dataset
    outcome: str
    statements: tuple[str, ...] = ()


def defaults_of(dataset: Dataset) -> dict[str, Any]:
    """Each field's default, normalized as a value in a file would be; InvalidDeclaration if one is not valid."""
    return compile_dataset(dataset).defaults


async def declare(pool: asyncpg.Pool, dataset: Dataset) -> Declared:
    """Make ``dataset`` the latest version of its name, creating or altering its table to match.

    Raise InvalidDeclaration for a declaration that cannot work (a default its own field refuses),
    RefusedChange for a change that is refused (see ``ingestro.datasets.tables.evolution``),
    for a table that is not the dataset's, or for a change the stored rows do not allow.
    """
    defaults = await asyncio.to_thread(defaults_of, dataset)  # compiling the checks is CPU work: not on the loop
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _DECLARE_LOCK)
        latest = await _latest(connection, dataset.name)
        if latest is not None and same_declaration(latest, dataset):
            return Declared(latest, "unchanged")
        if latest is None:
            new = attrs.evolve(dataset, version=1, migration=Migration())
            statements = await _table_for_new(connection, new, defaults)
            outcome = "created"
        else:
            statements = evolution(latest, dataset, defaults)
            new = attrs.evolve(dataset, version=latest.version + 1)
            outcome = "evolved"
        for statement in statements:
            try:
                await connection.execute(statement)
            except asyncpg.PostgresError as error:
                raise RefusedChange(
                    f"dataset {dataset.name}: the stored rows do not allow this change ({error})"
                ) from None
        await connection.execute(
            "INSERT INTO datasets (name, version, declaration) VALUES ($1, $2, $3)",
            new.name,
            new.version,
            unstructured(new),
        )
    log.info("dataset declared", extra={"dataset": new.name, "version": new.version, "outcome": outcome})
    return Declared(new, outcome, tuple(statements))


async def _table_for_new(connection: asyncpg.Connection, dataset: Dataset, defaults: dict[str, Any]) -> list[str]:
    """Create the table, or adopt one an older Ingestro made for the dataset (adding what it lacks)."""
    owner = await connection.fetchval(
        "SELECT name FROM datasets WHERE declaration->>'table' = $1 LIMIT 1", dataset.table
    )
    if owner is not None:
        raise RefusedChange(f"dataset {dataset.name}: table {dataset.table} is dataset {owner}'s")
    columns = set(await _columns(connection, dataset.table))
    if not columns:
        return [create_table(dataset, defaults)]
    if not columns >= _DATASET_TABLE_MARKS or not set(dataset.field_names) <= columns:
        raise RefusedChange(
            f"dataset {dataset.name}: a table called {dataset.table} exists and is not one Ingestro made for"
            " this declaration; choose another table name"
        )
    return missing_system_columns(dataset, columns)


async def _columns(connection: asyncpg.Connection, table: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
        DATA_SCHEMA,
        table,
    )
    return [row["column_name"] for row in rows]


async def _latest(db: Queryable, name: str) -> Dataset | None:
    raw = await db.fetchval("SELECT declaration FROM datasets WHERE name = $1 ORDER BY version DESC LIMIT 1", name)
    return None if raw is None else declaration_of(raw)


def declaration_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if path.suffix in SYNTAXES and path.is_file())


def read_declaration_file(path: Path) -> Dataset:
    try:
        with path.open("rb") as file:  # no more than a declaration may be: a huge file is refused unread
            return parse_declaration(file.read(MAX_BYTES + 1), SYNTAXES[path.suffix])
    except InvalidDeclaration as error:
        raise InvalidDeclaration(f"{path}: {error}") from None


def read_declaration_directory(directory: Path) -> list[Dataset]:
    """Every declaration in ``directory`` (blocking file reads)."""
    if not directory.is_dir():
        raise InvalidDeclaration(f"{directory} is not a directory of dataset declarations (INGESTRO_DATASETS_DIR)")
    return [read_declaration_file(path) for path in declaration_files(directory)]


async def sync(pool: asyncpg.Pool, directory: Path | None = None) -> list[Declared]:
    """Declare the built-in datasets, then every declaration file in ``directory`` (a file wins over a built-in)."""
    declarations: dict[str, Dataset] = dict(builtin_datasets())
    if directory is not None:
        for dataset in await asyncio.to_thread(read_declaration_directory, directory):
            declarations[dataset.name] = dataset
    return [await declare(pool, dataset) for dataset in declarations.values()]


@attrs.define
class DatasetRegistry:
    """Reads dataset versions; a given version is read from PostgreSQL once per process."""

    pool: asyncpg.Pool
    _versions: dict[tuple[str, int], Dataset] = attrs.field(factory=dict)

    async def latest(self, name: str, db: Queryable | None = None) -> Dataset:
        """The latest version of dataset ``name`` (read on ``db`` if given); raise UnknownDataset."""
        version = await (db or self.pool).fetchval("SELECT max(version) FROM datasets WHERE name = $1", name)
        if version is None:
            raise UnknownDataset(name)
        return await self.version(name, version, db)

    async def version(self, name: str, version: int, db: Queryable | None = None) -> Dataset:
        """Version ``version`` of dataset ``name``; raise UnknownDataset if there is no such version."""
        found = self._versions.get((name, version))
        if found is None:
            raw = await (db or self.pool).fetchval(
                "SELECT declaration FROM datasets WHERE name = $1 AND version = $2", name, version
            )
            if raw is None:
                raise UnknownDataset(f"{name} version {version}")
            found = self._versions[(name, version)] = declaration_of(raw)
        return found

    async def all_latest(self) -> list[Dataset]:
        """The latest version of every dataset, by name."""
        rows = await self.pool.fetch("SELECT DISTINCT ON (name) declaration FROM datasets ORDER BY name, version DESC")
        return [declaration_of(row["declaration"]) for row in rows]

    async def history(self, name: str) -> list[tuple[Dataset, Any]]:
        """Every version of dataset ``name``, oldest first, with when it was declared."""
        rows = await self.pool.fetch(
            "SELECT declaration, declared_at FROM datasets WHERE name = $1 ORDER BY version", name
        )
        if not rows:
            raise UnknownDataset(name)
        return [(declaration_of(row["declaration"]), row["declared_at"]) for row in rows]


async def hold_declarations(connection: asyncpg.Connection) -> None:
    """Keep any new version from being declared until the caller's transaction ends.

    A projection holds this while it writes a dataset's table, so the latest version
    it reads stays the latest, and the table keeps that version's columns, until it commits.
    """
    await connection.execute("SELECT pg_advisory_xact_lock_shared($1)", _DECLARE_LOCK)
