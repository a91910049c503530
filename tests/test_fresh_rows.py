"""The optimistic write path: new identities are COPYed straight in; one met by a racing writer is upserted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ingestro.datasets import declaration_of
from ingestro.datasets.registry import declare
from ingestro.datasets.tables import qualified_table
from projections import batches
from projections.data import DataProjection, staged_records
from projections.fresh_rows import PLAN_FOR_LOOKUP, fresh_rows_sql, stored_places
from tests.stack import Stack
from tests.test_dataset_pipeline import PRODUCTS, batch, products

FIRST = "00000000-0000-4000-8000-0000000000f1"
SECOND = "00000000-0000-4000-8000-0000000000f2"


async def _wait_for_a_lock_wait(stack: Stack) -> None:
    """Until a backend waits for a lock (the second writer's COPY, on the first writer's uncommitted key)."""
    for _ in range(500):
        if await stack.pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second writer never waited for the first")


@pytest.mark.parametrize(
    ("second_position", "winner", "second_counts"),
    [("1700000000002-0", "2", (1, 1, 0)), ("1700000000000-0", "1", (1, 0, 1))],
)
async def test_a_writer_that_meets_a_concurrent_writers_new_key_upserts_with_exact_counts(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, second_position: str, winner: str, second_counts: tuple[int, ...]
) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    copied, release = asyncio.Event(), asyncio.Event()
    record = batches.record

    async def record_once_released(*args: Any) -> None:
        # The first writer has COPYed its rows and waits here, uncommitted, until the second is blocked.
        if not copied.is_set():
            copied.set()
            await release.wait()
        await record(*args)

    monkeypatch.setattr(batches, "record", record_once_released)
    projection = DataProjection(stack.pool, stack.redis, optimistic=True)
    first = asyncio.create_task(projection.apply(batch(FIRST, "1700000000001-0", 0, [(2, "K", "1"), (3, "A", "5")])))
    await copied.wait()
    # Its lookup does not see the uncommitted K: its COPY waits for the first writer, then meets K.
    second = asyncio.create_task(projection.apply(batch(SECOND, second_position, 0, [(2, "K", "2"), (3, "B", "6")])))
    await _wait_for_a_lock_wait(stack)
    release.set()
    first_outcome, second_outcome = await first, await second

    assert (first_outcome.inserted, first_outcome.updated, first_outcome.duplicate) == (2, 0, 0)
    assert (second_outcome.inserted, second_outcome.updated, second_outcome.duplicate) == second_counts
    assert await products(stack) == [("A", "5", None), ("B", "6", None), ("K", winner, None)]
    # The earliest upload is K's first, whichever writer committed first.
    earliest = SECOND if second_position < "1700000000001-0" else FIRST
    assert str(await stack.pool.fetchval("SELECT first_job_id FROM products WHERE sku = 'K'")) == earliest
    # Exactly once still: applying both again changes nothing and answers the stored outcomes.
    assert await projection.apply_all(
        [batch(FIRST, "1700000000001-0", 0, []), batch(SECOND, second_position, 0, [])]
    ) == [first_outcome, second_outcome]


async def test_the_lookup_uses_the_unique_index_on_a_truncated_and_refilled_table(stack: Stack) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    projection = DataProjection(stack.pool, stack.redis, optimistic=True)
    table = qualified_table("products")
    rows = [(line, f"K{line}", str(line)) for line in range(2, 20_002)]
    await projection.apply(batch(FIRST, "1700000000001-0", 0, rows))
    await stack.pool.execute(f"ANALYZE {table}")
    await stack.pool.execute(f"TRUNCATE {table}")
    await projection.apply(batch(SECOND, "1700000000002-0", 0, rows))

    dataset = await projection.registry.latest("products")
    sql = fresh_rows_sql(dataset, projection.schema)
    records = staged_records(dataset, [batch(FIRST, "1700000000003-0", 1, rows[:500])])
    async with stack.pool.acquire() as connection, connection.transaction():
        await connection.execute(PLAN_FOR_LOOKUP)
        arrays = [[record[at] for record in records] for at in sql.identity_at]
        plan = "\n".join(row[0] for row in await connection.fetch("EXPLAIN " + sql.lookup, *arrays))
        assert "Seq Scan on products" not in plan and "Index" in plan, plan
        assert len(await stored_places(connection, sql, records)) == 500
