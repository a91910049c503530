"""Projections that take a group's batches in one statement still count each batch once."""

from __future__ import annotations

import attrs

from ingestro.datasets import get_dataset
from ingestro.domain.events import BatchApplied, ParseCompleted
from projections.data import DataProjection, staged_records, upsert_sql
from projections.jobs import JobsProjection
from tests.stack import Stack
from tests.test_projections import JOB, accepted


def test_an_identity_seen_in_several_batches_takes_first_and_last_by_upload_order_not_group_order() -> None:
    dataset = get_dataset("contacts")
    later = attrs.evolve(accepted("a@x.io", "b@x.io"), position="2-0")
    earlier = attrs.evolve(accepted("b@x.io", seq=1), position="1-0")
    records = [
        dict(zip(upsert_sql(dataset).columns, record, strict=True))
        for record in staged_records(dataset, [later, earlier])
    ]
    assert [(r["email"], r["first_batch"], r["last_batch"], r["batch"]) for r in records] == [
        ("a@x.io", 0, 0, 0),
        # Counted for its first occurrence in the group; first and last by upload position.
        ("b@x.io", 1, 0, 0),
    ]


async def test_a_batch_listed_twice_in_one_group_is_applied_once(stack: Stack) -> None:
    projection = DataProjection(stack.pool, stack.redis)
    batch = accepted("a@x.io", "b@x.io")
    first, _ = await projection.apply_all([batch, batch])
    assert (first.rows, first.inserted, first.duplicate) == (2, 2, 0)
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == 2
    assert await stack.pool.fetchval("SELECT inserted FROM applied_batches WHERE projection = 'data'") == 2


async def test_a_batch_told_twice_in_one_group_is_counted_once(stack: Stack) -> None:
    jobs = JobsProjection(stack.pool)
    data = BatchApplied(JOB, "data", 0, 3, 2, 1)
    errors = BatchApplied(JOB, "errors", 0, 1, 0, 0)
    await jobs.apply_all([data, errors, data, ParseCompleted(JOB, 4, 3, 1, 1, 1, [])])
    await jobs.apply_all([errors])
    job = await stack.pool.fetchrow("SELECT * FROM jobs WHERE job_id = $1", JOB)
    assert (job["rows_accepted"], job["rows_inserted"], job["rows_duplicate"], job["rows_rejected"]) == (3, 2, 1, 1)
    assert (job["data_batches_applied"], job["error_batches_applied"], job["status"]) == (1, 1, "completed")
