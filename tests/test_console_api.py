"""What the web console needs of the API: its files and security headers, error filters and counts,
redrive and stream backlog over HTTP, and ``POST /datasets/infer``. (The console itself, in a browser:
tests/test_console.py.)"""

from __future__ import annotations

import csv
import io
import re
from importlib import resources

import pytest

from ingestro.database.keys import Scope
from ingestro.streams.names import DLQ_STREAM, FILES_STREAM, PARSER_GROUP
from tests.stack import Stack, StackFactory
from tests.test_access import bearer
from tests.test_api import assert_problem
from tests.test_dlq import dead_letter, letter

STATIC = resources.files("ingestro.api") / "static"
ERRORS_CSV = (
    b"email,first_name,last_name,signup_date\n"
    b"a@example.com,A,B,2024-01-05\n"
    b"not-an-email,B,C,2024-01-05\n"
    b"c@example.com,C,D,someday\n"
    b"bad,,E,never\n"
)


async def test_the_console_is_served_with_its_security_headers(stack: Stack) -> None:
    for path, media_type in (
        ("/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
    ):
        response = await stack.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type), path
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert (await stack.client.get("/console/nope.js")).status_code == 404
    assert (await stack.client.get("/console/../app.py")).status_code == 404


async def test_the_console_page_needs_no_key_but_holds_no_data(stack_factory: StackFactory) -> None:
    async for secured in stack_factory.open(keys=True):
        assert (await secured.client.get("/")).status_code == 200
        assert (await secured.client.get("/console/app.js")).status_code == 200
        assert_problem(await secured.client.get("/streams"), 401)


def test_the_console_builds_no_html_from_data_and_has_no_inline_script_or_style() -> None:
    scripts = {entry.name: entry.read_text() for entry in STATIC.iterdir() if entry.name.endswith(".js")}
    assert {"app.js", "api.js", "dom.js", "sse.js", "headers.js"} <= set(scripts)
    for name, text in scripts.items():
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert unsafe not in text, (name, unsafe)
        # The key goes in a header, never a URL or a cookie.
        assert "document.cookie" not in text and "?key=" not in text and "localStorage" not in text, name
    page = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", page), "inline style or handler"


async def test_errors_are_filtered_by_field_and_code_and_counted(stack: Stack) -> None:
    stack.start_consumers()
    job = await stack.ingest(ERRORS_CSV)
    assert job["rows_rejected"] == 3
    url = f"/jobs/{job['job_id']}/errors"
    counts = (await stack.client.get(f"{url}/counts")).json()["items"]
    assert counts == [
        {"code": "invalid_date", "field": "signup_date", "errors": 2},
        {"code": "invalid_email", "field": "email", "errors": 2},
        {"code": "required", "field": "first_name", "errors": 1},
    ]
    lines = lambda body: [row["line"] for row in body["items"]]  # noqa: E731
    assert lines((await stack.client.get(url, params={"code": "invalid_email"})).json()) == [3, 5]
    assert lines((await stack.client.get(url, params={"field": "signup_date"})).json()) == [4, 5]
    assert lines((await stack.client.get(url, params={"field": "email", "code": "invalid_date"})).json()) == []
    first = (await stack.client.get(url, params={"field": "signup_date", "limit": 1})).json()
    assert lines(first) == [4] and first["next_cursor"]
    second = await stack.client.get(url, params={"field": "signup_date", "limit": 1, "cursor": first["next_cursor"]})
    assert lines(second.json()) == [5]
    exported = (await stack.client.get(url, params={"format": "csv", "code": "invalid_date"})).text
    assert [(row["line"], row["code"]) for row in csv.DictReader(io.StringIO(exported))] == [
        ("4", "invalid_date"),
        ("5", "invalid_date"),
    ]


async def test_error_counts_are_the_callers_only(stack_factory: StackFactory) -> None:
    async for secured in stack_factory.open(keys=True):
        mine = await bearer(secured, Scope.UPLOAD, "acme")
        response = await secured.client.post(
            "/upload", content=ERRORS_CSV, headers={"content-type": "text/csv", **mine}
        )
        job_id = response.json()["job_id"]
        assert (await secured.client.get(f"/jobs/{job_id}/errors/counts", headers=mine)).status_code == 200
        other = await bearer(secured, Scope.READ, "other")
        assert_problem(await secured.client.get(f"/jobs/{job_id}/errors/counts", headers=other), 404)


async def test_a_dead_letter_is_redriven_over_http_by_admin_keys_only(stack_factory: StackFactory) -> None:
    async for secured in stack_factory.open(keys=True):
        dlq_id = await dead_letter(secured.redis, letter(seq=3))
        reader = await bearer(secured, Scope.READ)
        assert_problem(await secured.client.post(f"/dlq/{dlq_id}/redrive", headers=reader), 403)
        admin = await bearer(secured, Scope.ADMIN)
        response = await secured.client.post(f"/dlq/{dlq_id}/redrive", headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        source = letter(seq=3).stream
        [(entry_id, fields)] = await secured.redis.xrange(source)
        assert body == {"id": dlq_id, "stream": source, "redriven_as": entry_id.decode()}
        assert fields == letter(seq=3).fields
        assert await secured.redis.xlen(DLQ_STREAM) == 0
        assert_problem(await secured.client.post(f"/dlq/{dlq_id}/redrive", headers=admin), 404)
        assert_problem(await secured.client.post("/dlq/not-an-id/redrive", headers=admin), 404)


async def test_the_stream_backlog_names_every_stream_and_group(stack: Stack) -> None:
    await stack.upload(ERRORS_CSV)  # a FileReceived no parser has read yet
    await stack.redis.xgroup_create(FILES_STREAM, PARSER_GROUP, id="0", mkstream=True)
    streams = {item["stream"]: item for item in (await stack.client.get("/streams")).json()["streams"]}
    assert DLQ_STREAM in streams and streams[DLQ_STREAM] == {"stream": DLQ_STREAM, "length": 0, "groups": []}
    assert streams[FILES_STREAM]["length"] == 1
    [parser] = streams[FILES_STREAM]["groups"]
    assert (parser["group"], parser["lag"], parser["pending"], parser["consumers"]) == (PARSER_GROUP, 1, 0, 0)


ORDERS = b"Order Id,Total,Ordered\n1,2.5,2024-01-31\n2,3,2024-02-01\n3,,2024-02-02\n"


async def test_infer_drafts_a_declaration_that_put_declares(stack: Stack) -> None:
    response = await stack.client.post(
        "/datasets/infer", content=ORDERS, params={"filename": "Orders 2024.csv"}, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    draft = response.json()
    assert draft["name"] == "orders_2024"
    assert draft["candidate_keys"] == ["order_id"]
    assert draft["rows_sampled"] == 3 and draft["columns"] == ["Order Id", "Total", "Ordered"]
    assert [(f["name"], f["type"], f["required"]) for f in draft["declaration"]["fields"]] == [
        ("order_id", "integer", True),
        ("total", "number", False),
        ("ordered", "date", True),
    ]
    toml = draft["toml"].replace('name = "orders_2024"', 'name = "orders_2024"\nkey = ["order_id"]')
    declared = await stack.client.put(
        "/datasets/orders_2024", content=toml, headers={"content-type": "application/toml"}
    )
    assert declared.status_code == 201, declared.text
    assert declared.json()["key"] == ["order_id"]
    stack.start_consumers()
    accepted = await stack.upload(ORDERS, dataset="orders_2024")
    job = await stack.wait_for_job(accepted["job_id"])
    assert (job["status"], job["rows_accepted"], job["rows_rejected"]) == ("completed", 3, 0)


@pytest.mark.parametrize(
    ("params", "body", "content_type", "status"),
    [
        ({"format": "csv", "name": "Bad Name"}, ORDERS, "text/csv", 400),
        ({"format": "csv", "delimiter": "x"}, ORDERS, "text/csv", 400),
        ({"format": "csv", "encoding": "nope"}, ORDERS, "text/csv", 400),
        ({"format": "csv"}, b"  \n", "text/csv", 400),
        ({}, ORDERS, "application/octet-stream", 415),
        ({"filename": "x.csv.gz"}, ORDERS, "application/gzip", 415),
        ({"format": "json"}, b"[1, 2, 3]", "application/json", 422),
        ({"format": "csv"}, b"a\n" + b"1\n" * (1024 * 1024), "text/csv", 413),
    ],
)
async def test_infer_refuses_what_it_cannot_use_with_a_problem(
    stack: Stack, params: dict[str, str], body: bytes, content_type: str, status: int
) -> None:
    response = await stack.client.post(
        "/datasets/infer", content=body, params=params, headers={"content-type": content_type}
    )
    assert_problem(response, status)
