"""End to end: upload -> streams -> parser -> projections -> PostgreSQL, on real servers."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from ingestro.devtools.samples import Expected, write_sample
from tests.stack import REDIS_MODES, Stack

#: Every test on a single redis-server and on a 3-master Redis Cluster.
pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES)
FORMAT_TYPES = {"csv": "text/csv", "json": "application/json", "ndjson": "application/x-ndjson"}


def sample(file_format: str, rows: int = 2000, seed: int = 7) -> tuple[bytes, Expected]:
    out = io.BytesIO()
    expected = write_sample(out, file_format, rows, seed)
    return out.getvalue(), expected


async def table_contents(stack: Stack) -> list[tuple[Any, ...]]:
    rows = await stack.pool.fetch(
        "SELECT email, first_name, last_name, age, signup_date, metadata, id, content_hash"
        " FROM contacts ORDER BY content_hash"
    )
    return [tuple(row) for row in rows]


def assert_counts(job: dict[str, Any], expected: Expected) -> None:
    assert job["status"] == "completed", job
    assert job["rows_total"] == expected.rows
    assert job["rows_accepted"] == expected.valid
    assert job["rows_rejected"] == expected.invalid
    assert job["rows_inserted"] + job["rows_duplicate"] == expected.valid


async def test_a_file_with_invalid_and_duplicate_rows_gives_exact_counts(stack: Stack) -> None:
    content, expected = sample("csv")
    stack.start_consumers()
    job = await stack.ingest(content)

    assert_counts(job, expected)
    assert job["rows_inserted"] == expected.distinct
    assert job["rows_duplicate"] == expected.duplicates
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
    lines = await stack.pool.fetch("SELECT line FROM validation_errors WHERE job_id = $1 ORDER BY line", job["job_id"])
    assert tuple(row["line"] for row in lines) == expected.invalid_lines


@pytest.mark.parametrize("file_format", ["json", "ndjson"])
async def test_json_and_ndjson_give_the_same_table_as_csv(stack: Stack, file_format: str) -> None:
    stack.start_consumers()
    csv_content, expected = sample("csv")
    assert_counts(await stack.ingest(csv_content), expected)
    from_csv = await table_contents(stack)

    await stack.pool.execute("TRUNCATE contacts")
    content, same_expected = sample(file_format)
    job = await stack.ingest(content, FORMAT_TYPES[file_format])
    assert_counts(job, same_expected)
    assert job["rows_inserted"] == expected.distinct
    assert await table_contents(stack) == from_csv


async def test_uploading_the_same_file_again_adds_no_row_and_counts_every_row_duplicate(stack: Stack) -> None:
    content, expected = sample("csv")
    stack.start_consumers()
    await stack.ingest(content)
    before = await table_contents(stack)

    again = await stack.ingest(content)

    assert_counts(again, expected)
    assert again["rows_inserted"] == 0
    assert again["rows_duplicate"] == expected.valid
    assert await table_contents(stack) == before
    assert await stack.pool.fetchval("SELECT count(*) FROM validation_errors") == 2 * expected.invalid


async def test_two_copies_of_each_consumer_give_the_same_result(stack: Stack) -> None:
    content, expected = sample("csv", rows=5000, seed=11)
    stack.start_consumers(copies=2)
    jobs = [await stack.upload(content) for _ in range(3)]
    finished = [await stack.wait_for_job(job["job_id"]) for job in jobs]

    for job in finished:
        assert_counts(job, expected)
    assert sum(job["rows_inserted"] for job in finished) == expected.distinct
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
    shares = await stack.pool.fetch("SELECT count(*) FROM applied_batches WHERE projection = 'data'")
    assert shares[0][0] == sum(-(-expected.valid // stack.settings.batch_size) for _ in jobs)


async def test_rejected_rows_are_reported_with_line_field_code_and_raw_row(stack: Stack) -> None:
    stack.start_consumers()
    content = (
        b"email,first_name,last_name,age,signup_date\nok@example.com,Ann,Lee,30,2024-01-05\nnope,Bob,Ray,x,2024-01-05\n"
    )
    job = await stack.ingest(content)
    assert (job["rows_accepted"], job["rows_rejected"]) == (1, 1)

    response = await stack.client.get(f"/jobs/{job['job_id']}/errors")
    assert response.status_code == 200
    [error] = response.json()["items"]
    assert error["line"] == 3
    assert error["raw"] == {
        "email": "nope",
        "first_name": "Bob",
        "last_name": "Ray",
        "age": "x",
        "signup_date": "2024-01-05",
    }
    assert [(e["field"], e["code"]) for e in error["errors"]] == [
        ("email", "invalid_email"),
        ("age", "invalid_integer"),
    ]


async def test_unknown_columns_are_ignored_and_reported_in_the_job(stack: Stack) -> None:
    stack.start_consumers()
    content = b"Email , FIRST_NAME,last_name,signup_date,favourite_colour\na@example.com,A,B,2024-01-05,blue\n"
    job = await stack.ingest(content)
    assert job["rows_inserted"] == 1
    assert job["unknown_columns"] == ["favourite_colour"]


async def test_a_header_without_required_columns_fails_the_job_with_the_reason(stack: Stack) -> None:
    stack.start_consumers()
    job = await stack.ingest(b"email,first_name\na@example.com,A\n")
    assert job["status"] == "failed"
    assert "last_name" in job["error"] and "signup_date" in job["error"]


async def test_broken_json_fails_the_job_and_keeps_the_rows_before_it(stack: Stack) -> None:
    stack.start_consumers()
    rows = [
        {"email": f"u{i}@example.com", "first_name": "A", "last_name": "B", "signup_date": "2024-01-05"}
        for i in range(250)
    ]
    content = orjson.dumps(rows)[:-40]  # cut off inside the last object
    job = await stack.ingest(content, "application/json")
    assert job["status"] == "failed"
    assert "invalid JSON" in job["error"]
    assert job["rows_inserted"] == 249
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == 249


async def test_data_is_readable_page_by_page(stack: Stack) -> None:
    content, expected = sample("csv", rows=300)
    stack.start_consumers()
    await stack.ingest(content)
    seen = [item["content_hash"] for item in await stack.follow_pages("/data?dataset=contacts&limit=100")]
    assert len(seen) == len(set(seen)) == expected.distinct
