"""Projections apply each batch exactly once, whoever delivers it and however often."""

from __future__ import annotations

from typing import Any

from ingestro.datasets import Dataset, declaration_of, get_dataset
from ingestro.datasets.rules import check_row
from ingestro.domain import codec
from ingestro.domain.events import AcceptedRow, BatchApplied, FieldError, RejectedRow, RowsAccepted, RowsRejected
from ingestro.streams.names import ACCEPTED_STREAM, JOB_EVENTS_STREAM, logical_stream
from ingestro.streams.runtime import Entry
from projections.data import DataProjection, position_number, staged_records, upsert_sql
from projections.errors import ErrorsProjection
from tests.stack import Stack

JOB = "00000000-0000-4000-8000-000000000001"


def accepted(*emails: str, seq: int = 0) -> RowsAccepted:
    dataset = get_dataset("contacts")
    rows = []
    for line, email in enumerate(emails, start=2):
        checked = check_row(dataset, {"email": email, "first_name": "A", "last_name": "B", "signup_date": "2024-01-05"})
        assert checked.content_hash is not None
        rows.append(AcceptedRow(line, checked.content_hash, checked.values))
    return RowsAccepted(JOB, "contacts", seq, rows)


def test_batches_are_staged_as_their_distinct_rows_tagged_with_their_batch() -> None:
    first, second = accepted("b@x.io", "a@x.io", "B@X.io"), accepted("c@x.io", "a@x.io", seq=1)
    dataset = get_dataset("contacts")
    records = [
        dict(zip(upsert_sql(dataset).columns, record, strict=True))
        for record in staged_records(dataset, [first, second])
    ]
    # A repeated row is staged once, for the batch of its first occurrence, from its first line to its last.
    assert [(r["email"], r["first_line"], r["last_line"], r["batch"]) for r in records] == [
        ("b@x.io", 2, 4, 0),
        ("a@x.io", 3, 3, 0),
        ("c@x.io", 2, 2, 1),
    ]


async def test_batches_applied_together_count_repeats_as_duplicates_of_the_later_batch(stack: Stack) -> None:
    projection = DataProjection(stack.pool, stack.redis)
    first, second = accepted("a@x.io", "b@x.io"), accepted("b@x.io", "c@x.io", "c@x.io", seq=1)
    outcomes = await projection.apply_all([first, second])
    assert [(o.rows, o.inserted, o.duplicate) for o in outcomes] == [(2, 2, 0), (3, 1, 2)]
    assert await projection.apply_all([second, first]) == [outcomes[1], outcomes[0]]
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == 3


async def test_a_batch_applied_twice_changes_nothing_the_second_time(stack: Stack) -> None:
    projection = DataProjection(stack.pool, stack.redis)
    batch = accepted("a@x.io", "b@x.io", "a@x.io")

    first = await projection.apply(batch)
    before = await stack.pool.fetch("SELECT content_hash, updated_at FROM contacts ORDER BY 1")
    second = await projection.apply(batch)

    assert (first.rows, first.inserted, first.duplicate) == (3, 2, 1)
    assert second == first
    assert await stack.pool.fetch("SELECT content_hash, updated_at FROM contacts ORDER BY 1") == before


async def test_a_redelivered_batch_is_announced_again_with_its_first_outcome(stack: Stack) -> None:
    projection = DataProjection(stack.pool, stack.redis)
    batch = accepted("a@x.io", "b@x.io")
    await stack.redis.xadd(ACCEPTED_STREAM, codec.encode(batch))  # type: ignore[arg-type]
    [(entry_id, fields)] = await stack.redis.xrange(ACCEPTED_STREAM)

    entry = Entry(ACCEPTED_STREAM, entry_id.decode(), fields)
    await projection(entry)
    await projection(entry)

    announced = [codec.decode(f) for _, f in await stack.redis.xrange(JOB_EVENTS_STREAM)]
    assert announced == [BatchApplied(JOB, "data", 0, 2, 2, 0)] * 2


async def test_rejected_rows_are_stored_once(stack: Stack) -> None:
    projection = ErrorsProjection(stack.pool, stack.redis)
    batch = RowsRejected(
        JOB, "contacts", 0, [RejectedRow(7, [FieldError("email", "invalid_email", "bad")], {"email": "x"})]
    )
    await projection.apply(batch)
    await projection.apply(batch)
    rows = await stack.pool.fetch("SELECT line, errors, raw FROM validation_errors")
    assert [tuple(row) for row in rows] == [
        (7, [{"field": "email", "code": "invalid_email", "message": "bad"}], {"email": "x"})
    ]


async def test_job_counts_stay_exact_when_every_event_is_delivered_twice(stack: Stack) -> None:
    """Re-append every event of a finished job: the jobs, data and errors projections ignore the repeats."""
    stack.start_consumers()
    content = b"email,first_name,last_name,signup_date\na@x.io,A,B,2024-01-05\nbad,A,B,2024-01-05\n"
    job = await stack.ingest(content)
    for stream in await stack.redis.keys("ingestro:*"):
        if logical_stream(stream.decode()).endswith(("files", "rows-accepted", "rows-rejected", "job-events")):
            for _, fields in await stack.redis.xrange(stream):
                await stack.redis.xadd(stream, fields)  # type: ignore[arg-type]
    await stack.wait_idle()
    again = await stack.wait_for_job(job["job_id"])
    for key in ("status", "rows_total", "rows_accepted", "rows_rejected", "rows_inserted", "rows_duplicate"):
        assert again[key] == job[key], key
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == 1
    assert await stack.pool.fetchval("SELECT count(*) FROM validation_errors") == 1


def test_upload_positions_order_like_their_stream_ids() -> None:
    ids = ["0-0", "0-1", "1-0", "1700000000000-0", "1700000000000-1", "1700000000000-999999", "1700000000001-0"]
    numbers = [position_number(entry_id) for entry_id in ids]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert position_number(None) == 0 and max(numbers) < 2**63


def _through_a_stream(batch: RowsAccepted) -> RowsAccepted:
    """``batch`` as a consumer gets it: encoded into a stream entry's fields and decoded."""
    return codec.decode({name.encode(): value for name, value in codec.encode(batch).items()})


def test_decoded_batches_are_staged_as_the_parsers_batches_are() -> None:
    """The data projection reads a decoded batch's stored rows by place; the records are those of the rows."""
    kept = declaration_of(
        {
            "name": "kept",
            "key": ["sku"],
            "unknown_columns": "keep",
            "fields": [
                {"name": "price", "type": "number"},
                {"name": "sku", "type": "string", "required": True},
                {"name": "qty", "type": "integer", "default": 1},
            ],
        }
    )

    def rows(*records: dict[str, Any]) -> list[AcceptedRow]:
        checked = [check_row(kept, record) for record in records]
        return [AcceptedRow(line, c.content_hash or "", c.values) for line, c in enumerate(checked, start=2)]

    cases: list[tuple[Dataset, list[RowsAccepted]]] = [
        (get_dataset("contacts"), [accepted("b@x.io", "a@x.io", "B@X.io"), accepted("c@x.io", "a@x.io", seq=1)]),
        (
            kept,
            [
                RowsAccepted(
                    JOB,
                    "kept",
                    0,
                    rows(
                        {"sku": "A", "price": "1.50"},
                        {"sku": "B", "price": "2", "extra_columns": {"note": "x"}},  # other fields: keyed by name
                        {"sku": "A", "price": "3", "qty": "2"},  # a repeat, later: its content wins
                    ),
                    kept.version,
                    "1700000000001-0",
                ),
                # An earlier upload of A and a batch whose rows lack a field (an older entry): the table's default.
                RowsAccepted(JOB, "kept", 1, rows({"sku": "A", "price": "9"}), kept.version, "1700000000000-0"),
                RowsAccepted(
                    JOB,
                    "kept",
                    2,
                    [AcceptedRow(5, "h", {"sku": "C", "price": "4"})],
                    kept.version,
                    "1700000000002-0",
                ),
            ],
        ),
    ]
    for dataset, batches_ in cases:
        decoded = [_through_a_stream(batch) for batch in batches_]
        assert all(isinstance(batch.rows, codec.PositionalRows) for batch in decoded)
        assert staged_records(dataset, decoded) == staged_records(dataset, batches_)
