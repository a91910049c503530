"""Two data writers of one keyed table at once: the stored row and every batch's counts are those of one order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ingestro.datasets import declaration_of
from ingestro.datasets.registry import declare
from ingestro.domain.events import RowsAccepted
from projections import batches
from projections.batches import Outcome
from projections.data import DataProjection
from tests.stack import Stack
from tests.test_dataset_pipeline import PRODUCTS, batch, products

ZERO = "00000000-0000-4000-8000-0000000000f0"
FIRST = "00000000-0000-4000-8000-0000000000f1"
SECOND = "00000000-0000-4000-8000-0000000000f2"


async def _wait_for_a_lock_wait(stack: Stack) -> None:
    """Until a backend waits for a lock (the second writer, on the first writer's)."""
    for _ in range(500):
        if await stack.pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second writer never waited for the first")


async def _race(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, first: RowsAccepted, second: RowsAccepted
) -> tuple[Outcome, Outcome]:
    """Apply ``first``, held uncommitted until ``second``, applied meanwhile by another writer, waits for it."""
    written, release = asyncio.Event(), asyncio.Event()
    record = batches.record

    async def record_once_released(*args: Any) -> None:
        # The first writer has written its rows and waits here, uncommitted, until the second is blocked.
        if not written.is_set():
            written.set()
            await release.wait()
        await record(*args)

    monkeypatch.setattr(batches, "record", record_once_released)
    projection = DataProjection(stack.pool, stack.redis)
    first_applied = asyncio.create_task(projection.apply(first))
    await written.wait()
    second_applied = asyncio.create_task(projection.apply(second))
    await _wait_for_a_lock_wait(stack)
    release.set()
    outcomes = await first_applied, await second_applied
    # Exactly once still: applying both again changes nothing and answers the stored outcomes.
    assert await projection.apply_all([first, second]) == list(outcomes)
    return outcomes


def _counts(outcome: Outcome) -> tuple[int, int, int]:
    return outcome.inserted, outcome.updated, outcome.duplicate


@pytest.mark.parametrize(
    ("second_position", "winner", "second_counts"),
    [("1700000000002-0", "2", (1, 1, 0)), ("1700000000000-0", "1", (1, 0, 1))],
)
async def test_a_key_another_writer_is_inserting_counts_as_that_writer_left_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, second_position: str, winner: str, second_counts: tuple[int, ...]
) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    # The second writer waits for the first, then sees its K: replaced by a later upload (updated), kept
    # against an earlier one (a duplicate), as if the two had been applied one after the other.
    first, second = await _race(
        stack,
        monkeypatch,
        batch(FIRST, "1700000000001-0", 0, [(2, "K", "1"), (3, "A", "5")]),
        batch(SECOND, second_position, 0, [(2, "K", "2"), (3, "B", "6")]),
    )

    assert _counts(first) == (2, 0, 0)
    assert _counts(second) == second_counts
    assert await products(stack) == [("A", "5", None), ("B", "6", None), ("K", winner, None)]
    # The earliest upload is K's first, whichever writer committed first.
    earliest = SECOND if second_position < "1700000000001-0" else FIRST
    assert str(await stack.pool.fetchval("SELECT first_job_id FROM products WHERE sku = 'K'")) == earliest


async def test_a_key_another_writer_is_updating_counts_as_that_writer_left_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await declare(stack.pool, declaration_of(PRODUCTS))
    await DataProjection(stack.pool, stack.redis).apply(batch(ZERO, "1700000000000-0", 0, [(2, "K", "0")]))
    # The second writer brings K back to the price the table held when it began: it replaces the first
    # writer's price, so it is an update, not a duplicate of the price it began with.
    first, second = await _race(
        stack,
        monkeypatch,
        batch(FIRST, "1700000000001-0", 0, [(2, "K", "1")]),
        batch(SECOND, "1700000000002-0", 0, [(2, "K", "0")]),
    )

    assert (_counts(first), _counts(second)) == ((0, 1, 0), (0, 1, 0))
    assert await products(stack) == [("K", "0", None)]
