"""Parameters that cannot be valid are a 400 problem+json on every endpoint: never an error of the database."""

from __future__ import annotations

import base64
import uuid

import orjson
import pytest

from ingestro.api.pagination import encode_cursor
from tests.stack import Stack
from tests.test_api import CSV, assert_problem

JOB = str(uuid.uuid4())
REQUESTS = [
    ("GET", "/data?dataset=%00"),
    ("GET", "/data?dataset=contacts%00"),
    ("GET", "/jobs?dataset=%00"),
    ("GET", "/jobs?status=completed%00"),
    ("GET", "/jobs?since=2024-01-01T00:00:00%00Z"),
    ("GET", "/jobs?%00=1"),
    ("GET", "/datasets/%00"),
    ("GET", "/datasets/contacts%00"),
    ("PUT", "/datasets/%00"),
    ("GET", "/jobs/%00"),
    ("GET", f"/jobs/{JOB}/errors?format=csv%00"),
    ("GET", f"/jobs/{JOB}/events?x=%01"),
    ("GET", "/dlq?cursor=%00"),
    ("POST", "/upload?dataset=%00"),
    ("POST", "/upload?encoding=%00"),
    ("POST", "/upload?encoding=utf-8%00"),
    ("POST", "/upload?delimiter=%00"),
    ("POST", "/upload?filename=a%0Ab.csv"),
    ("GET", "/data?dataset=con%7Ftacts"),
]


@pytest.mark.parametrize(("method", "url"), REQUESTS)
async def test_a_control_character_in_a_path_or_query_parameter_is_a_400(stack: Stack, method: str, url: str) -> None:
    response = await stack.client.request(method, url, content=CSV, headers={"content-type": "text/csv"})
    assert "control character" in str(assert_problem(response, 400)["detail"])


async def test_a_tab_stays_a_delimiter(stack: Stack) -> None:
    response = await stack.client.post("/upload?delimiter=%09", content=CSV, headers={"content-type": "text/csv"})
    assert response.status_code == 202, response.text


def raw_cursor(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode().rstrip("=")


CURSORS = [
    encode_cursor(["\u0000"]),
    encode_cursor(["a\u0000b"]),
    encode_cursor([["nested"]]),
    encode_cursor([]),
    encode_cursor(["2024-01-01T00:00:00+00:00", 5]),
    encode_cursor(["2024-01-01T00:00:00", str(uuid.uuid4())]),
    encode_cursor(["2024-01-01T00:00:00+00:00", "\u0000"]),
    raw_cursor(b"[1000000000000000000000000000000]"),
    encode_cursor([True]),
    encode_cursor([1, 2]),
    raw_cursor(b"[-18446744073709551616]"),
    raw_cursor(b"[1e400]"),
    raw_cursor(b"[" * 2000),
    raw_cursor(b"\xff\xfe"),
    raw_cursor(b'"just text"'),
    "!!!",
]


@pytest.mark.parametrize("cursor", CURSORS)
async def test_a_cursor_this_api_did_not_give_out_is_a_400_on_every_list(stack: Stack, cursor: str) -> None:
    job = await stack.upload(CSV)
    for path in ("/data", "/jobs", f"/jobs/{job['job_id']}/errors", "/dlq"):
        response = await stack.client.get(path, params={"cursor": cursor})
        assert "cursor" in str(assert_problem(response, 400)["detail"]), path


async def test_the_cursors_the_api_gives_out_still_page(stack: Stack) -> None:
    stack.start_consumers()
    lines = [f"p{i}@example.com,P,Q,2024-01-02" for i in range(5)] + [f"bad{i},P,Q,2024-01-02" for i in range(5)]
    job = await stack.ingest(("email,first_name,last_name,signup_date\n" + "\n".join(lines) + "\n").encode())
    for _ in range(2):
        await stack.upload(CSV)
    assert len(await stack.follow_pages("/data?limit=2")) == 5
    assert len(await stack.follow_pages("/jobs?limit=1")) == 3
    errors = await stack.follow_pages(f"/jobs/{job['job_id']}/errors?limit=2")
    assert [error["line"] for error in errors] == [7, 8, 9, 10, 11]
    assert orjson.dumps(errors)  # plain JSON
