"""Names a declaration may not give a table or a field: PostgreSQL's own, and Ingestro's.

A dataset's table lives beside Ingestro's own tables (``jobs``, ``datasets``, ``api_keys``…) in
``tables.DATA_SCHEMA``, and PostgreSQL resolves an unqualified name in ``pg_catalog`` first. So a
table may not be called like a system catalog (``pg_*``), ``information_schema``, or one of
Ingestro's tables; and a field may not take the name of a system column (``ctid``, ``xmin``…)
or of a bookkeeping column (``content_hash``…). Ingestro's tables are read from the migrations
themselves, so a migration that adds one reserves its name.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import orjson

from ingestro.datasets.model import SYSTEM_COLUMNS

#: Columns every PostgreSQL table has: a field by one of these names could not be created.
POSTGRES_SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"})
#: Every column name a field may not take.
RESERVED_COLUMNS = SYSTEM_COLUMNS | POSTGRES_SYSTEM_COLUMNS
#: The ledger of applied migrations: made by ``ingestro.database.migrations`` itself, not by a migration.
MIGRATIONS_TABLE = "schema_migrations"
_CREATED = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:public\.)?\"?([a-z_][a-z0-9_]*)", re.IGNORECASE)


def column_refusal(name: str) -> str | None:
    """Why a field may not be called ``name``, or None."""
    if name in POSTGRES_SYSTEM_COLUMNS:
        return f"{name!r} is reserved: every PostgreSQL table has a system column of that name"
    if name in SYSTEM_COLUMNS:
        return f"{name!r} is reserved for Ingestro's own columns"
    return None


@cache
def ingestro_tables() -> frozenset[str]:
    """Ingestro's own tables: those the migrations create (less the built-in datasets' tables), and their ledger."""
    created = {MIGRATIONS_TABLE}
    for entry in resources.files("ingestro.migrations").iterdir():
        if entry.name.endswith(".sql"):
            created.update(name.lower() for name in _CREATED.findall(entry.read_text()))
    # Read raw, not checked: checking a declaration asks this function.
    shipped = resources.files("ingestro.datasets").iterdir()
    builtin = (orjson.loads(entry.read_bytes()) for entry in shipped if entry.name.endswith(".json"))
    return frozenset(created - {raw.get("table", raw["name"]) for raw in builtin})


def table_refusal(table: str) -> str | None:
    """Why a dataset's table may not be called ``table``, or None."""
    if table.startswith("pg_") or table == "information_schema":
        return f"table {table!r} is reserved: PostgreSQL's system catalogs are named so"
    if table in ingestro_tables():
        return f"table {table!r} is reserved: it is one of Ingestro's own tables"
    return None
