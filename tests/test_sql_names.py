"""SQL object names: a dataset's table is always named with its schema, and may not take a reserved name."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from ingestro.datasets import builtin_datasets
from ingestro.datasets.reserved import ingestro_tables
from tests.stack import Stack, StackFactory
from tests.test_api import assert_problem
from tests.test_dataset_pipeline import PRODUCTS


@pytest.mark.parametrize(
    "table",
    ["pg_class", "pg_whatever", "information_schema", "jobs", "datasets", "api_keys", "schema_migrations"],
)
async def test_a_table_named_like_a_catalog_or_one_of_ingestros_own_is_a_422(stack: Stack, table: str) -> None:
    response = await stack.client.put("/datasets/products", content=orjson.dumps(PRODUCTS | {"table": table}))
    assert "reserved" in str(assert_problem(response, 422)["detail"])
    exists = await stack.pool.fetchval(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = $1", table
    )
    assert exists == (table in ingestro_tables())  # nothing was made
    assert_problem(await stack.client.get("/datasets/products"), 404)


@pytest.mark.parametrize("field", ["ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "content_hash", "created_at"])
async def test_a_field_named_like_a_system_column_is_a_422_reserved(stack: Stack, field: str) -> None:
    declaration = PRODUCTS | {"fields": [*PRODUCTS["fields"], {"name": field, "type": "string"}]}
    response = await stack.client.put("/datasets/products", content=orjson.dumps(declaration))
    assert f"field {field}: {field!r} is reserved" in str(assert_problem(response, 422)["detail"])


async def test_every_table_the_migrations_make_is_reserved_or_a_built_in_datasets(stack: Stack) -> None:
    made = {
        row["tablename"]
        for row in await stack.pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    builtin = {dataset.table for dataset in builtin_datasets().values()}
    assert made - builtin == ingestro_tables()


@pytest.fixture
async def decoyed(stack_factory: StackFactory) -> AsyncIterator[Stack]:
    """A stack whose connections search a schema ``decoy``, holding a table ``products``, before ``public``."""
    async for stack in stack_factory.open():
        database = await stack.pool.fetchval("SELECT current_database()")
        await stack.pool.execute("CREATE SCHEMA decoy")
        await stack.pool.execute("CREATE TABLE decoy.products (note text)")
        await stack.pool.execute("INSERT INTO decoy.products VALUES ('not a dataset table')")
        await stack.pool.execute(f'ALTER DATABASE "{database}" SET search_path = decoy, public')
        try:
            async for decoyed in stack_factory.open():  # new connections: they take the new search_path
                yield decoyed
        finally:
            await stack.pool.execute(f'ALTER DATABASE "{database}" RESET search_path')
            await stack.pool.execute("DROP SCHEMA decoy CASCADE")


async def test_every_statement_names_the_dataset_table_with_its_schema(decoyed: Stack) -> None:
    assert await decoyed.pool.fetchval("SHOW search_path") == "decoy, public"
    created = await decoyed.client.put("/datasets/products", content=orjson.dumps(PRODUCTS))
    assert created.status_code == 201, created.text
    assert created.json()["statements"][0].startswith('CREATE TABLE "public"."products"')
    more = PRODUCTS | {"fields": [*PRODUCTS["fields"], {"name": "colour", "type": "string"}]}
    assert (await decoyed.client.put("/datasets/products", content=orjson.dumps(more))).status_code == 200
    decoyed.start_consumers()
    accepted = await decoyed.upload(b"sku,price,colour\nA-1,12.50,red\n", dataset="products")
    job = await decoyed.wait_for_job(accepted["job_id"])
    assert (job["status"], job["rows_inserted"]) == ("completed", 1)
    rows = (await decoyed.client.get("/data?dataset=products")).json()["items"]
    assert [(row["sku"], row["price"], row["colour"]) for row in rows] == [("A-1", "12.5", "red")]
    assert await decoyed.pool.fetchval("SELECT count(*) FROM public.products") == 1
    assert await decoyed.pool.fetch("SELECT * FROM decoy.products") == [("not a dataset table",)]
