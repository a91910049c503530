"""Datasets declared by users get typed tables that Ingestro creates and evolves (real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingestro.datasets import SYSTEM_COLUMNS, Dataset, InvalidDeclaration, RefusedChange, declaration_of
from ingestro.datasets.registry import DatasetRegistry, declare, sync
from ingestro.datasets.tables import SYSTEM_COLUMN_SQL
from tests.stack import Stack

ORDERS: dict[str, Any] = {
    "name": "orders",
    "key": ["order_id"],
    "fields": [
        {"name": "order_id", "type": "uuid", "required": True},
        {"name": "customer", "type": "email", "required": True, "aliases": ["E-mail", "Email Address"]},
        {"name": "total", "type": "number", "minimum": 0},
        {"name": "quantity", "type": "integer"},
        {"name": "paid", "type": "boolean"},
        {"name": "ordered_on", "type": "date"},
        {"name": "shipped_at", "type": "datetime"},
        {"name": "status", "type": "enum", "values": ["new", "shipped"]},
        {"name": "details", "type": "json"},
    ],
}


def orders(**changes: Any) -> Dataset:
    return declaration_of(ORDERS | changes)


async def column_types(stack: Stack, table: str) -> dict[str, str]:
    rows = await stack.pool.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table
    )
    return {row["column_name"]: row["data_type"] for row in rows}


async def test_a_new_dataset_gets_a_table_with_one_typed_column_per_field(stack: Stack) -> None:
    declared = await declare(stack.pool, orders())

    assert (declared.outcome, declared.dataset.version) == ("created", 1)
    types = await column_types(stack, "orders")
    assert {name: types[name] for name in declared.dataset.field_names} == {
        "order_id": "uuid",
        "customer": "text",
        "total": "numeric",
        "quantity": "bigint",
        "paid": "boolean",
        "ordered_on": "date",
        "shipped_at": "timestamp with time zone",
        "status": "text",
        "details": "jsonb",
    }
    assert {"content_hash", "schema_version", "extra_columns", "first_job_id", "last_line"} <= set(types)


async def test_declaring_the_same_declaration_again_changes_nothing(stack: Stack) -> None:
    await declare(stack.pool, orders())
    again = await declare(stack.pool, orders(version=1))
    assert (again.outcome, again.dataset.version, again.statements) == ("unchanged", 1, ())


async def test_adding_an_optional_field_is_a_new_version_that_adds_a_column_with_its_default(stack: Stack) -> None:
    await declare(stack.pool, orders())
    await stack.pool.execute(
        "INSERT INTO orders (order_id, customer, content_hash, first_job_id, first_line, last_job_id, last_line)"
        " VALUES (gen_random_uuid(), 'a@x.io', 'h1', gen_random_uuid(), 2, gen_random_uuid(), 2)"
    )
    fields = [*ORDERS["fields"], {"name": "channel", "type": "string", "default": "web"}]

    evolved = await declare(stack.pool, orders(fields=fields))

    assert (evolved.outcome, evolved.dataset.version) == ("evolved", 2)
    assert await stack.pool.fetch("SELECT customer, channel, schema_version FROM orders") == [("a@x.io", "web", 1)]
    assert (await DatasetRegistry(stack.pool).latest("orders")).version == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"fields": ORDERS["fields"][:-1]},
            "field details is removed, with its stored values: list it in migration.drop",
        ),
        (
            {"fields": [*ORDERS["fields"][:-1], {"name": "details", "type": "string"}]},
            "field details changes type (json -> string): list it in migration.retype",
        ),
        ({"key": ["customer"]}, "the identity cannot change"),
        ({"table": "orders_v2"}, "the table cannot change"),
        (
            {"fields": [*ORDERS["fields"], {"name": "region", "type": "string", "required": True}]},
            "new field region must be optional",
        ),
    ],
)
async def test_a_change_that_would_lose_or_invent_data_is_refused_saying_what_to_do(
    stack: Stack, change: dict[str, Any], message: str
) -> None:
    await declare(stack.pool, orders())
    with pytest.raises(RefusedChange) as refused:
        await declare(stack.pool, orders(**change))
    assert message in str(refused.value)
    assert (await DatasetRegistry(stack.pool).latest("orders")).version == 1


async def test_a_declared_migration_drops_and_retypes_columns(stack: Stack) -> None:
    await declare(stack.pool, orders())
    fields = [f for f in ORDERS["fields"] if f["name"] not in ("details", "quantity")]
    fields.append({"name": "quantity", "type": "number"})

    evolved = await declare(
        stack.pool, orders(fields=fields, version=2, migration={"drop": ["details"], "retype": ["quantity"]})
    )

    types = await column_types(stack, "orders")
    assert "details" not in types and types["quantity"] == "numeric"
    assert evolved.dataset.version == 2


async def test_a_retype_the_stored_values_do_not_allow_is_refused_and_changes_nothing(stack: Stack) -> None:
    await declare(stack.pool, orders())
    await stack.pool.execute(
        "INSERT INTO orders"
        " (order_id, customer, details, content_hash, first_job_id, first_line, last_job_id, last_line)"
        " VALUES (gen_random_uuid(), 'a@x.io', '{\"a\": 1}', 'h1', gen_random_uuid(), 2, gen_random_uuid(), 2)"
    )
    fields = [*ORDERS["fields"][:-1], {"name": "details", "type": "integer"}]
    with pytest.raises(RefusedChange, match="the stored rows do not allow this change"):
        await declare(stack.pool, orders(fields=fields, version=2, migration={"retype": ["details"]}))
    assert (await column_types(stack, "orders"))["details"] == "jsonb"


async def test_a_dataset_cannot_take_a_table_ingestro_uses_or_another_one(stack: Stack) -> None:
    with pytest.raises(InvalidDeclaration, match="table 'jobs' is reserved: it is one of Ingestro's own tables"):
        await declare(stack.pool, orders(name="jobs_copy", table="jobs"))
    await stack.pool.execute("CREATE TABLE ledger (entry text)")
    try:
        with pytest.raises(RefusedChange, match="a table called ledger exists and is not one Ingestro made"):
            await declare(stack.pool, orders(name="ledger"))
    finally:
        await stack.pool.execute("DROP TABLE ledger")


async def test_a_default_its_own_field_refuses_makes_the_declaration_invalid(stack: Stack) -> None:
    fields = [*ORDERS["fields"], {"name": "rating", "type": "integer", "default": "lots"}]
    with pytest.raises(InvalidDeclaration, match="rating"):
        await declare(stack.pool, orders(fields=fields))


async def test_declarations_are_read_from_json_and_toml_files_in_a_directory(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "animals.toml").write_text(
        'name = "animals"\nkey = ["tag"]\n[[fields]]\nname = "tag"\ntype = "string"\nrequired = true\n'
    )
    (tmp_path / "plants.json").write_text('{"name": "plants", "fields": [{"name": "latin", "type": "string"}]}')
    (tmp_path / "README.md").write_text("not a declaration")

    declared = {d.dataset.name: d.outcome for d in await sync(stack.pool, tmp_path)}

    assert declared == {"contacts": "unchanged", "animals": "created", "plants": "created"}
    assert {"tag", "latin"} <= set(await column_types(stack, "animals")) | set(await column_types(stack, "plants"))


async def test_a_broken_declaration_file_is_named_in_the_error(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('name = "bad"\nfields = 3\n')
    with pytest.raises(InvalidDeclaration, match=r"bad\.toml"):
        await sync(stack.pool, tmp_path)


def test_the_names_a_field_may_not_take_are_the_bookkeeping_columns() -> None:
    assert {name for name, _ in SYSTEM_COLUMN_SQL} == SYSTEM_COLUMNS
