"""End to end, on real servers: upload options, gzip, hostile names and values, thresholds, the errors CSV.

Every upload here ends in rows ingested, rows rejected with a reason, or a job failed
with a reason: never a 500, a stuck job, a failed handler or a dead consumer.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import os
import random
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestro.api.jobs import spreadsheet_safe
from ingestro.api.parameters import CONTROL
from ingestro.datasets.rules import Invalid, normalize_string
from ingestro.domain import codec
from ingestro.domain.events import FileReceived, UploadOptions
from ingestro.streams.names import DLQ_STREAM, FILES_STREAM
from tests.stack import Stack, failure_records
from tests.test_api import assert_problem
from tests.test_properties import VALID_FILES

HEADER = b"email,first_name,last_name,signup_date\n"
MEDIA = {"csv": "text/csv", "json": "application/json", "ndjson": "application/x-ndjson"}


def rows(count: int, start: int = 0) -> bytes:
    return b"".join(f"u{i}@example.com,Ada,Lovelace,2024-01-05\n".encode() for i in range(start, start + count))


async def post(stack: Stack, content: bytes, content_type: str = "text/csv", **kwargs: Any) -> Any:
    headers = {"content-type": content_type, **kwargs.pop("headers", {})}
    return await stack.client.post("/upload", content=content, headers=headers, **kwargs)


async def received(stack: Stack, job_id: str) -> FileReceived:
    for _, fields in await stack.redis.xrange(FILES_STREAM):
        event = codec.decode(fields)
        if isinstance(event, FileReceived) and event.job_id == job_id:
            return event
    raise AssertionError(f"no FileReceived for {job_id}")


async def assert_nothing_failed(stack: Stack) -> None:
    """Every entry handled, none failing or dead-lettered, every consumer still running."""
    await stack.wait_idle()
    assert stack.consumers_alive()
    assert await stack.redis.xlen(DLQ_STREAM) == 0
    assert not any((await failure_records(stack.redis, stack.settings.partitions)).values())


# ------------------------------------------------------------------ options


async def test_upload_options_travel_with_the_file_to_the_parser(stack: Stack) -> None:
    params = {"delimiter": ";", "encoding": "Latin-1", "max_errors": "5", "max_error_rate": "0.25"}
    response = await post(stack, b"email;first_name\n", params=params)
    assert response.status_code == 202
    event = await received(stack, response.json()["job_id"])
    assert event.options == UploadOptions(";", "iso8859-1", None, 5, 0.25)


@pytest.mark.parametrize(
    "params",
    [
        {"delimiter": "x"},
        {"delimiter": ",,"},
        {"encoding": "no-such-codec"},
        {"encoding": "base64"},  # a codec, but not a text encoding
        {"max_errors": "-1"},
        {"max_errors": "1.5"},
        {"max_errors": "9" * 100},
        {"max_error_rate": "1.5"},
        {"max_error_rate": "nan"},
        {"max_error_rate": "lots"},
    ],
)
async def test_a_bad_upload_option_is_400_and_nothing_is_stored(stack: Stack, params: dict[str, str]) -> None:
    assert_problem(await post(stack, HEADER + rows(1), params=params), 400)
    assert list(Path(stack.settings.upload_dir).glob("*")) == []


async def test_a_content_encoding_other_than_gzip_is_415(stack: Stack) -> None:
    assert_problem(await post(stack, HEADER, headers={"content-encoding": "br"}), 415)


async def test_a_gzip_encoded_multipart_body_is_415(stack: Stack) -> None:
    response = await stack.client.post(
        "/upload", files={"file": ("a.csv", HEADER, "text/csv")}, headers={"content-encoding": "gzip"}
    )
    assert_problem(response, 415)


# ------------------------------------------------------------------ gzip


async def test_gzip_is_told_by_content_encoding_by_a_gz_name_or_by_a_gzip_media_type(stack: Stack) -> None:
    stack.start_consumers()
    content = gzip.compress(HEADER + rows(300))
    uploads = [
        await post(stack, content, headers={"content-encoding": "gzip"}),
        await stack.client.post("/upload", files={"file": ("contacts.csv.gz", content, "application/octet-stream")}),
        await post(stack, content, "application/gzip", params={"format": "csv"}),
        await post(stack, content, "application/octet-stream", params={"filename": "contacts.csv.gz"}),
    ]
    for response in uploads:
        assert response.status_code == 202, response.text
        assert (response.json()["format"], response.json()["compression"]) == ("csv", "gzip")
        job = await stack.wait_for_job(response.json()["job_id"])
        assert (job["status"], job["rows_accepted"], job["bytes"]) == ("completed", 300, len(content))


async def test_a_gzip_bomb_fails_its_job_cleanly(stack: Stack) -> None:
    stack.start_consumers()
    bomb = gzip.compress(HEADER + rows(1) * 300_000)  # ~12 MB inflated from ~30 kB
    accepted = (await post(stack, bomb, headers={"content-encoding": "gzip"})).json()
    job = await stack.wait_for_job(accepted["job_id"])
    assert job["status"] == "failed"
    assert job["error"] == "the file inflates more than 100 times its compressed size (a decompression bomb?)"
    await assert_nothing_failed(stack)


# ------------------------------------------------------------------ hostile names and values

HOSTILE_NAMES = [
    ("../../etc/passwd.csv", "passwd.csv"),
    ("..\\..\\windows\\win.ini.csv", "win.ini.csv"),
    ("nul\x00byte.csv", "nulbyte.csv"),
    ("\x1b[31mred\x07.csv", "[31mred.csv"),
    ("a" * 3000 + ".csv", "a" * 255),
    ("/", ""),
]


def multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body whose file name is sent byte for byte (httpx would percent-encode control characters)."""
    boundary = "hostile-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(("name", "shown"), HOSTILE_NAMES)
async def test_a_hostile_file_name_never_touches_the_file_system(stack: Stack, name: str, shown: str) -> None:
    body, content_type = multipart(name, HEADER)
    by_form = await post(stack, body, content_type)
    by_query = await post(stack, HEADER, params={"filename": name})
    if CONTROL.search(name):  # no query parameter may hold one (ingestro/api/parameters.py); a form's name is cleaned
        assert_problem(by_query, 400)
        by_query = await post(stack, HEADER, params={"filename": CONTROL.sub("", name)})
    ids = []
    for response in (by_form, by_query):
        assert response.status_code == 202, response.text
        assert response.json()["filename"] == shown
        ids.append(response.json()["job_id"])
    # Only server-made names, in the upload directory and nowhere else.
    assert sorted(path.name for path in Path(stack.settings.upload_dir).iterdir()) == sorted(ids)
    assert not (Path(stack.settings.upload_dir).parent / "etc").exists()


async def test_values_that_look_like_sql_html_or_formulas_are_stored_as_data(stack: Stack) -> None:
    stack.start_consumers()
    hostile = ["'; DROP TABLE contacts;--", "<script>alert(1)</script>", "=cmd|'/c calc'!A1", "@SUM(1)"]
    content = HEADER + b"".join(
        f'h{i}@example.com,"{value}",Lovelace,2024-01-05\n'.encode() for i, value in enumerate(hostile)
    )
    job = await stack.ingest(content)
    assert job["rows_inserted"] == 4
    stored = await stack.pool.fetch("SELECT first_name FROM contacts ORDER BY email")
    assert [row["first_name"] for row in stored] == hostile


# ------------------------------------------------------------------ the errors CSV export


def test_cells_that_would_start_a_formula_get_a_leading_quote() -> None:
    assert [spreadsheet_safe(cell) for cell in ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "x=1", "", "'x"]] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "'\rx",
        "x=1",
        "",
        "'x",
    ]


async def test_the_errors_export_is_csv_with_line_field_code_message_and_raw_row_formulas_neutralised(
    stack: Stack,
) -> None:
    stack.start_consumers()
    content = (
        b"email,first_name,last_name,signup_date,age\n"
        b'=HYPERLINK("http://evil"),+Ada,-Lovelace,2024-01-05,@1\n'
        b"ok@example.com,Ada,Lovelace,2024-01-05,\n"
        b"short,row\n"
    )
    job = await stack.ingest(content)
    response = await stack.client.get(f"/jobs/{job['job_id']}/errors", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{job["job_id"]}-errors.csv"'
    table = list(csv.reader(io.StringIO(response.text)))
    assert [cells[:4] for cells in table] == [
        ["line", "field", "code", "message"],
        ["2", "email", "invalid_email", "'=HYPERLINK(\"http://evil\")' is not a valid email address"],
        ["2", "age", "invalid_integer", "'@1' is not an integer"],
        ["4", "", "field_count", "expected 5 fields, found 2"],
    ]
    raw = {
        "email": '=HYPERLINK("http://evil")',
        "first_name": "+Ada",
        "last_name": "-Lovelace",
        "signup_date": "2024-01-05",
        "age": "@1",
    }
    assert [orjson.loads(cells[4]) for cells in table[1:]] == [raw, raw, ["short", "row"]]
    for cells in table:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


async def test_the_errors_export_takes_only_json_or_csv_and_known_jobs(stack: Stack) -> None:
    job = await stack.upload(HEADER)
    assert_problem(await stack.client.get(f"/jobs/{job['job_id']}/errors", params={"format": "xml"}), 400)
    missing = "00000000-0000-0000-0000-000000000000"
    assert_problem(await stack.client.get(f"/jobs/{missing}/errors", params={"format": "csv"}), 404)


async def test_the_errors_export_streams_every_rejected_row_past_one_page(stack: Stack) -> None:
    stack.start_consumers()
    bad = b"".join(f"bad{i},A,B,2024-01-05\n".encode() for i in range(2500))
    job = await stack.ingest(HEADER + bad)
    response = await stack.client.get(f"/jobs/{job['job_id']}/errors", params={"format": "csv"})
    lines = [int(cells[0]) for cells in list(csv.reader(io.StringIO(response.text)))[1:]]
    assert lines == list(range(2, 2502))


# ------------------------------------------------------------------ error thresholds


async def test_past_max_errors_the_job_fails_with_the_reason_and_the_rows_before_stay(stack: Stack) -> None:
    stack.start_consumers()
    bad = b"".join(f"bad{i},A,B,2024-01-05\n".encode() for i in range(5))
    response = await post(stack, HEADER + rows(250) + bad + rows(100, 250), params={"max_errors": "2"})
    job = await stack.wait_for_job(response.json()["job_id"])
    assert job["status"] == "failed"
    assert job["error"] == "3 rows rejected, more than max_errors=2 (stopped at line 254)"
    assert (job["rows_total"], job["rows_accepted"], job["rows_inserted"], job["rows_rejected"]) == (253, 250, 250, 3)
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == 250


async def test_past_max_error_rate_the_job_fails_with_the_reason(stack: Stack) -> None:
    stack.start_consumers()
    bad = b"".join(f"bad{i},A,B,2024-01-05\n".encode() for i in range(30))
    response = await post(stack, HEADER + rows(70) + bad, params={"max_error_rate": "0.2"})
    job = await stack.wait_for_job(response.json()["job_id"])
    assert job["status"] == "failed"
    assert job["error"] == "30 of 100 rows rejected, more than max_error_rate=0.2 (stopped at line 101)"
    assert job["rows_inserted"] == 70


# ------------------------------------------------------------------ many at once


def open_upload_files(stack: Stack) -> list[str]:
    """The files of the upload directory this process holds open."""
    targets = []
    for link in Path("/proc/self/fd").iterdir():
        try:
            targets.append(os.readlink(link))
        except OSError:
            continue  # closed while listed
    return [target for target in targets if target.startswith(str(stack.settings.upload_dir))]


async def test_twenty_uploads_at_once_stay_within_bounded_memory_and_file_handles(stack: Stack) -> None:
    # Wide rows (a 4 kB unknown column), so that the uploads are large and parsing them is quick.
    filler = "f" * 4000
    piece = b"".join(f"u{i}@example.com,Ada,Lovelace,2024-01-05,{filler}\n".encode() for i in range(16))  # ~65 kB
    pieces = 66  # ~4.3 MB per upload, ~86 MB in all
    started = asyncio.Event()
    arrived = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal arrived
        yield HEADER.rstrip(b"\n") + b",filler\n"
        arrived += 1
        if arrived == 20:
            started.set()
        await started.wait()  # all twenty are in flight before any finishes
        for _ in range(pieces):
            yield piece
            await asyncio.sleep(0)

    handles_before = len(os.listdir("/proc/self/fd"))
    tracemalloc.start()
    try:
        responses = await asyncio.gather(*(post(stack, body()) for _ in range(20)))  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [response.status_code for response in responses] == [202] * 20
    assert peak < 16 * 1024 * 1024  # the ~86 MB went to disk as they came, never held
    assert open_upload_files(stack) == []
    # Sockets to Redis and PostgreSQL may have been opened for the twenty at once; no more than that.
    assert len(os.listdir("/proc/self/fd")) < handles_before + 40

    stack.start_consumers()
    jobs = [await stack.wait_for_job(response.json()["job_id"], timeout=120) for response in responses]
    assert {(job["status"], job["rows_accepted"]) for job in jobs} == {("completed", 16 * pieces)}
    await assert_nothing_failed(stack)
    assert open_upload_files(stack) == []


# ------------------------------------------------------------------ fuzzing through the whole stack


def fuzz_cases(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """Random bytes and mutated valid files, reproducible from ``seed``."""
    rng = random.Random(seed)
    cases: list[tuple[str, bytes]] = []
    for index in range(count):
        file_format = list(VALID_FILES)[index % len(VALID_FILES)]
        if index % 4 == 0:
            cases.append((file_format, rng.randbytes(rng.randint(1, 400))))
            continue
        data = bytearray(VALID_FILES[file_format])
        start = rng.choice([0, data.find(b"\n") + 1])  # often past the header
        for _ in range(rng.randint(1, 6)):
            position = rng.randint(min(start, len(data)), len(data))
            byte = rng.choice(b'\x00\n\r",[]{}\\\xff\xc3\xed')
            if rng.random() < 0.5 and position < len(data):
                data[position] = byte
            else:
                data.insert(position, byte)
        cases.append((file_format, bytes(data)))
    return cases


async def test_random_and_mutated_uploads_never_give_a_500_a_stuck_job_or_a_failed_handler(stack: Stack) -> None:
    stack.start_consumers()
    job_ids = []
    for file_format, content in fuzz_cases(36):
        # Some gzip-compressed, and some said to be gzip but not.
        gzip_said, gzip_made = len(job_ids) % 4 == 3, len(job_ids) % 8 == 3
        response = await post(
            stack,
            gzip.compress(content) if gzip_made else content,
            MEDIA[file_format],
            headers={"content-encoding": "gzip"} if gzip_said else {},
        )
        assert response.status_code == 202, response.text
        job_ids.append(response.json()["job_id"])
    for job_id in job_ids:
        job = await stack.wait_for_job(job_id, timeout=30)
        assert job["status"] == "completed" or job["error"]
    await assert_nothing_failed(stack)
    exported = await stack.client.get(f"/jobs/{job_ids[1]}/errors", params={"format": "csv"})
    assert exported.status_code == 200


# ------------------------------------------------------------------ the round trip through the API


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20)), min_size=1, max_size=5))
async def test_rows_written_by_csv_writer_come_out_of_the_api_as_their_normalized_values(
    stack: Stack, names: list[tuple[str, str]]
) -> None:
    # One stack for every example: each example's rows are told apart by their job.
    if not stack.consumers_alive():
        stack.start_consumers()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "first_name", "last_name", "signup_date"])
    for index, (first_name, last_name) in enumerate(names):
        writer.writerow([f"u{index}@example.com", first_name, last_name, "2024-01-05"])
    job = await stack.ingest(out.getvalue().encode())
    assert job["status"] == "completed"
    stored = await stack.pool.fetch(
        "SELECT email, first_name, last_name FROM contacts WHERE last_job_id = $1", job["job_id"]
    )
    written = {row["email"]: (row["first_name"], row["last_name"]) for row in stored}
    expected = {}
    for index, (first_name, last_name) in enumerate(names):
        try:
            values = (normalize_string(first_name), normalize_string(last_name))
        except Invalid:
            continue  # text with NUL: rejected
        if None not in values:
            expected[f"u{index}@example.com"] = values
    assert written == expected
