"""Declared datasets end to end: side by side, natural keys decided by upload order, unknown columns, evolution."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from ingestro.datasets import declaration_of
from ingestro.datasets.registry import declare
from ingestro.datasets.rules import check_row
from ingestro.domain.events import AcceptedRow, RowsAccepted
from projections.data import DataProjection
from tests.stack import REDIS_MODES, Stack

PRODUCTS: dict[str, Any] = {
    "name": "products",
    "key": ["sku"],
    "fields": [
        {"name": "sku", "type": "string", "required": True, "aliases": ["SKU Code"]},
        {"name": "price", "type": "number", "minimum": 0},
        {"name": "in_stock", "type": "boolean"},
    ],
}


async def upload(stack: Stack, content: str, dataset: str) -> str:
    accepted = await stack.upload(content.encode(), "text/csv", dataset=dataset)
    job_id: str = accepted["job_id"]
    return job_id


async def products(stack: Stack) -> list[tuple[Any, ...]]:
    rows = await stack.pool.fetch("SELECT sku, price::text, in_stock FROM products ORDER BY sku")
    return [tuple(row) for row in rows]


async def test_two_datasets_with_different_schemas_ingest_side_by_side(stack: Stack) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    stack.start_consumers()

    contacts_job = await upload(stack, "email,first_name,last_name,signup_date\nA@X.io,Ada,L,2024-01-02\n", "contacts")
    products_job = await upload(stack, "SKU Code,price,in_stock\n A-1 ,12.50,yes\nB-2,-1,no\nC-3,3,maybe\n", "products")

    contacts = await stack.wait_for_job(contacts_job)
    products_ = await stack.wait_for_job(products_job)
    assert (contacts["rows_inserted"], products_["rows_inserted"], products_["rows_rejected"]) == (1, 1, 2)
    assert await products(stack) == [("A-1", "12.5", True)]
    assert await stack.pool.fetchval("SELECT email FROM contacts") == "a@x.io"
    codes = await stack.pool.fetch(
        "SELECT line, e->>'code' AS code FROM validation_errors, jsonb_array_elements(errors) e WHERE job_id = $1"
        " ORDER BY line",
        products_job,
    )
    assert [(row["line"], row["code"]) for row in codes] == [(3, "below_minimum"), (4, "invalid_boolean")]


async def test_a_later_upload_updates_rows_of_the_same_key_and_reports_what_changed(stack: Stack) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    stack.start_consumers()
    first = await stack.wait_for_job(await upload(stack, "sku,price\nA,1\nB,2\n", "products"))
    second = await stack.wait_for_job(await upload(stack, "sku,price\nA,1\nB,5\nC,7\n", "products"))

    assert (first["rows_inserted"], first["rows_updated"], first["rows_duplicate"]) == (2, 0, 0)
    assert (second["rows_inserted"], second["rows_updated"], second["rows_duplicate"]) == (1, 1, 1)
    assert await products(stack) == [("A", "1", None), ("B", "5", None), ("C", "7", None)]
    last_jobs = await stack.pool.fetch("SELECT sku, last_job_id::text, first_job_id::text FROM products ORDER BY sku")
    assert [tuple(row) for row in last_jobs] == [
        ("A", second["job_id"], first["job_id"]),
        ("B", second["job_id"], first["job_id"]),
        ("C", second["job_id"], second["job_id"]),
    ]


def batch(job: str, position: str, seq: int, rows: list[tuple[int, str, str]]) -> RowsAccepted:
    """A products batch of (line, sku, price) rows, as the parser would emit it for an upload at ``position``."""
    dataset = declaration_of(PRODUCTS)
    accepted = []
    for line, sku, price in rows:
        checked = check_row(dataset, {"sku": sku, "price": price})
        assert checked.content_hash is not None
        accepted.append(AcceptedRow(line, checked.content_hash, checked.values))
    return RowsAccepted(job, "products", seq, accepted, 1, position)


async def test_the_stored_row_depends_on_upload_order_and_line_not_on_which_batch_is_applied_first(
    stack: Stack,
) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    early = "00000000-0000-4000-8000-00000000000a"
    late = "00000000-0000-4000-8000-00000000000b"
    batches = [
        batch(early, "1700000000000-0", 0, [(2, "A", "1"), (3, "B", "1"), (9, "B", "2")]),
        batch(late, "1700000000000-1", 0, [(2, "A", "3")]),
        batch(late, "1700000000000-1", 1, [(7, "B", "4"), (8, "C", "4")]),
    ]
    results = []
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        await stack.pool.execute("TRUNCATE products, applied_batches")
        projection = DataProjection(stack.pool, stack.redis)
        for index in order:
            await projection.apply(batches[index])
        rows = await stack.pool.fetch(
            "SELECT sku, price::text, first_job_id::text, first_line, last_job_id::text, last_line"
            " FROM products ORDER BY sku"
        )
        results.append([tuple(row) for row in rows])

    assert (
        results[0]
        == results[1]
        == results[2]
        == [
            ("A", "3", early, 2, late, 2),
            ("B", "4", early, 3, late, 7),
            ("C", "4", late, 8, late, 8),
        ]
    )


@pytest.mark.parametrize("redis_mode", REDIS_MODES)  # on a Redis Cluster too
async def test_uploads_apply_in_upload_order_with_two_data_processes_racing(stack: Stack) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    files = ["sku,price\n" + "".join(f"K{key},{version * 1000 + key}\n" for key in range(300)) for version in range(6)]
    jobs = [await upload(stack, content, "products") for content in files]  # upload order is file order
    stack.start_consumers(copies=2)
    for job in jobs:
        assert (await stack.wait_for_job(job))["status"] == "completed"

    prices = await stack.pool.fetch("SELECT sku, price FROM products ORDER BY sku")
    assert len(prices) == 300
    assert all(int(row["price"]) == 5000 + int(row["sku"][1:]) for row in prices)  # the last upload's values
    assert await stack.pool.fetchval("SELECT count(DISTINCT last_job_id) FROM products") == 1


async def test_an_evolved_schema_adds_a_column_without_losing_rows(stack: Stack) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    stack.start_consumers()
    await stack.wait_for_job(await upload(stack, "sku,price\nA,1\nB,2\n", "products"))

    evolved = PRODUCTS | {"fields": [*PRODUCTS["fields"], {"name": "colour", "type": "string", "default": "none"}]}
    response = await stack.client.put("/datasets/products", content=orjson.dumps(evolved))
    assert response.status_code == 200, response.text
    assert (response.json()["outcome"], response.json()["version"]) == ("evolved", 2)
    job = await stack.wait_for_job(await upload(stack, "sku,price,colour\nC,3,red\n", "products"))

    assert job["dataset_version"] == 2
    rows = await stack.pool.fetch("SELECT sku, colour, schema_version FROM products ORDER BY sku")
    assert [tuple(row) for row in rows] == [("A", "none", 1), ("B", "none", 1), ("C", "red", 2)]


async def test_unknown_columns_kept_are_stored_with_the_row(stack: Stack) -> None:
    kept = PRODUCTS | {"name": "kept", "unknown_columns": "keep"}
    await declare(stack.pool, declaration_of(kept))
    stack.start_consumers()
    job = await stack.wait_for_job(await upload(stack, "sku,price,Colour,Notes\nA,1,red,\nB,2,,\n", "kept"))

    assert job["unknown_columns"] == ["Colour", "Notes"]
    rows = await stack.pool.fetch("SELECT sku, extra_columns FROM kept ORDER BY sku")
    assert [tuple(row) for row in rows] == [("A", {"Colour": "red", "Notes": ""}), ("B", {"Colour": "", "Notes": ""})]


async def test_a_dataset_that_rejects_unknown_columns_fails_a_csv_naming_them(stack: Stack) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS | {"name": "strict", "unknown_columns": "reject"}))
    stack.start_consumers()
    job = await stack.wait_for_job(await upload(stack, "sku,price,Colour\nA,1,red\n", "strict"))

    assert job["status"] == "failed"
    assert "Colour" in job["error"] and job["error_line"] == 1


@pytest.mark.parametrize("redis_mode", REDIS_MODES)  # on a Redis Cluster too
async def test_a_replay_of_the_data_projection_reproduces_the_typed_tables_exactly(stack: Stack) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    await declare(stack.pool, declaration_of(PRODUCTS | {"name": "bins", "key": []}))
    files = ["sku,price,in_stock\n" + "".join(f"K{k},{v}.{k % 10}0,{k % 2}\n" for k in range(200)) for v in range(4)]
    jobs = [await upload(stack, content, dataset) for content in files for dataset in ("products", "bins")]
    stack.start_consumers(copies=2)
    for job in jobs:
        assert (await stack.wait_for_job(job))["status"] == "completed"
    await stack.wait_idle()
    before = {table: await table_checksum(stack, table) for table in ("products", "bins")}

    await stack.replay("data")

    assert {table: await table_checksum(stack, table) for table in ("products", "bins")} == before
    assert before["products"][0] == 200 and before["bins"][0] == 800


async def table_checksum(stack: Stack, table: str) -> tuple[int, str]:
    """Row count and md5 of the rows' text, leaving out only created_at and updated_at (rebuild time)."""
    rows = await stack.pool.fetch(f"SELECT * FROM {table}")
    texts = sorted(
        repr(sorted((k, v) for k, v in row.items() if k not in ("created_at", "updated_at"))) for row in rows
    )
    return len(texts), hashlib.md5("\n".join(texts).encode()).hexdigest()


async def test_a_batch_accepted_under_an_older_version_is_stored_with_the_new_fields_defaults(stack: Stack) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    older = batch(
        "00000000-0000-4000-8000-00000000000c", "1700000000000-0", 0, [(2, "A", "1"), (3, "B", "2"), (4, "B", "3")]
    )
    evolved = PRODUCTS | {"fields": [*PRODUCTS["fields"], {"name": "colour", "type": "string", "default": "none"}]}
    assert (await declare(stack.pool, declaration_of(evolved))).dataset.version == 2

    await DataProjection(stack.pool, stack.redis).apply(older)  # rows of version 1, one key twice

    rows = await stack.pool.fetch("SELECT sku, price::text, colour, schema_version FROM products ORDER BY sku")
    assert [tuple(row) for row in rows] == [("A", "1", "none", 1), ("B", "3", "none", 1)]
