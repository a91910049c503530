"""The SQL of a dataset's typed table: how to create it, and how one version becomes the next.

Pure: declarations in, SQL text out (or ``RefusedChange`` saying why a change
is refused). ``ingestro.datasets.registry`` runs the statements.

Every typed table has one column per field, then the bookkeeping columns: the
content hash, the schema version that accepted the stored row, the columns a
file had beyond the declaration (``extra_columns``), and the job, line and upload
position (the FileReceived stream id as one number: ``projections.data.position_number``) that first and last wrote it.
Identity is the natural key when one is declared, else the content hash.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from ingestro.datasets import SQL_TYPES, Dataset, Field, RefusedChange

#: The schema of every dataset's table (and of Ingestro's own tables, which the migrations make there).
DATA_SCHEMA = "public"


def quote_ident(name: str) -> str:
    """``name`` as a PostgreSQL identifier, safe to put in SQL text (a column, a schema)."""
    return '"' + name.replace('"', '""') + '"'


def qualified_table(table: str, schema: str = DATA_SCHEMA) -> str:
    """``table`` in ``schema``, quoted: how every statement names a dataset's table.

    Never left to the search_path: PostgreSQL looks in ``pg_catalog`` (and the session's temporary
    tables) first, so an unqualified ``pg_class`` is the catalog's, whatever ``public`` holds.
    """
    return f"{quote_ident(schema)}.{quote_ident(table)}"


#: Bookkeeping columns, as (name, SQL declaration); ADD COLUMN-able onto a table made before they were.
#: The data projection fills each from the staged row or its batch (projections/data.py: _BOOKKEEPING_SOURCES).
SYSTEM_COLUMN_SQL: tuple[tuple[str, str], ...] = (
    ("extra_columns", "jsonb"),
    ("content_hash", "text NOT NULL"),
    ("schema_version", "integer NOT NULL DEFAULT 1"),
    ("first_job_id", "uuid NOT NULL"),
    ("first_line", "bigint NOT NULL"),
    ("first_position", "bigint NOT NULL DEFAULT 0"),
    ("last_job_id", "uuid NOT NULL"),
    ("last_line", "bigint NOT NULL"),
    ("last_position", "bigint NOT NULL DEFAULT 0"),
    ("created_at", "timestamptz NOT NULL DEFAULT now()"),
    ("updated_at", "timestamptz NOT NULL DEFAULT now()"),
)


def identity(dataset: Dataset) -> tuple[str, ...]:
    """The columns that make a stored row one row: the natural key, else the content hash."""
    return dataset.key or ("content_hash",)


def literal(value: Any) -> str:
    """A normalized value as an SQL literal (for a column DEFAULT, which takes no parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (str, date)):
        return "'" + str(value).replace("'", "''") + "'"
    return "'" + orjson.dumps(value).decode().replace("'", "''") + "'::jsonb"


def column_sql(field: Field, default: Any = None) -> str:
    """The column of ``field``; ``default``: its normalized default, if it has one."""
    sql = f"{quote_ident(field.name)} {SQL_TYPES[field.type]}"
    if default is not None:
        sql += f" DEFAULT {literal(default)}"
    if field.required:
        sql += " NOT NULL"
    return sql


def create_table(dataset: Dataset, defaults: dict[str, Any]) -> str:
    """CREATE TABLE for the dataset's typed table (``defaults``: normalized default by field name)."""
    columns = [column_sql(field, defaults.get(field.name)) for field in dataset.fields]
    columns += [f"{name} {sql}" for name, sql in SYSTEM_COLUMN_SQL]
    columns.append(f"PRIMARY KEY ({', '.join(map(quote_ident, identity(dataset)))})")
    if dataset.key:
        # Content includes the key, so distinct keys never share a hash: unique, and a stable page order.
        columns.append("UNIQUE (content_hash)")
    return f"CREATE TABLE {qualified_table(dataset.table)} (\n    " + ",\n    ".join(columns) + "\n)"


def missing_system_columns(dataset: Dataset, existing: set[str]) -> list[str]:
    """ALTER TABLE statements adding the bookkeeping columns a table made by an older Ingestro lacks."""
    table = qualified_table(dataset.table)
    return [f"ALTER TABLE {table} ADD COLUMN {name} {sql}" for name, sql in SYSTEM_COLUMN_SQL if name not in existing]


def evolution(old: Dataset, new: Dataset, defaults: dict[str, Any]) -> list[str]:
    """The statements that turn ``old``'s table into ``new``'s; RefusedChange, saying why, if it is refused.

    Adding an optional field, changing constraints, aliases, formats or the unknown-columns
    policy needs nothing but the new declaration. Removing a field or changing the stored
    type of one must be declared: ``version`` = old version + 1 and the field in
    ``migration.drop`` / ``migration.retype``. The table and the identity never change.
    """
    problems: list[str] = []
    if new.table != old.table:
        problems.append(f"the table cannot change ({old.table} -> {new.table}); declare a new dataset instead")
    if new.key != old.key:
        problems.append(
            f"the identity cannot change (key {list(old.key)} -> {list(new.key)}); declare a new dataset instead"
        )
    before = {field.name: field for field in old.fields}
    after = {field.name: field for field in new.fields}
    removed = [name for name in before if name not in after]
    added = [after[name] for name in after if name not in before]
    retyped = [name for name in after if name in before and SQL_TYPES[after[name].type] != SQL_TYPES[before[name].type]]
    declared = removed or retyped
    if declared and new.version != old.version + 1:
        problems.append(
            f"removing or retyping fields is a new version: declare version {old.version + 1}"
            f" with migration.drop = {removed} and migration.retype = {retyped}"
        )
    for name in removed:
        if name not in new.migration.drop:
            problems.append(f"field {name} is removed, with its stored values: list it in migration.drop to confirm")
    for name in retyped:
        if name not in new.migration.retype:
            problems.append(
                f"field {name} changes type ({before[name].type.value} -> {after[name].type.value}):"
                " list it in migration.retype to convert the stored values"
            )
    for field in added:
        if field.required:
            problems.append(f"new field {field.name} must be optional: the rows stored so far have no value for it")
    if problems:
        raise RefusedChange(f"dataset {new.name}: " + "; ".join(problems))
    table = qualified_table(new.table)
    statements = [f"ALTER TABLE {table} ADD COLUMN {column_sql(field, defaults.get(field.name))}" for field in added]
    statements += [f"ALTER TABLE {table} DROP COLUMN {quote_ident(name)}" for name in removed]
    for name in retyped:
        sql_type = SQL_TYPES[after[name].type]
        column = quote_ident(name)
        statements.append(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {sql_type} USING {column}::{sql_type}")
    for name in after:
        if name in before and after[name].default != before[name].default:
            value = defaults.get(name)
            change = "DROP DEFAULT" if value is None else f"SET DEFAULT {literal(value)}"
            statements.append(f"ALTER TABLE {table} ALTER COLUMN {quote_ident(name)} {change}")
        if name in before and after[name].required != before[name].required:
            change = "SET" if after[name].required else "DROP"
            statements.append(f"ALTER TABLE {table} ALTER COLUMN {quote_ident(name)} {change} NOT NULL")
    return statements


def same_declaration(old: Dataset, new: Dataset) -> bool:
    """Whether ``new`` declares nothing ``old`` does not (the version and migration aside)."""
    return (old.name, old.table, old.fields, old.key, old.unknown_columns, old.timezone) == (
        new.name,
        new.table,
        new.fields,
        new.key,
        new.unknown_columns,
        new.timezone,
    )
