"""The HTTP API's contract: accepted uploads, job views, and problem+json for every bad request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingestro.api.upload import detect_format
from ingestro.services.uploads import display_name
from tests.stack import Stack, StackFactory

CSV = b"email,first_name,last_name,signup_date\na@example.com,A,B,2024-01-05\n"


def assert_problem(response: object, status: int) -> dict[str, object]:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


async def test_a_multipart_upload_is_accepted_with_a_location(stack: Stack) -> None:
    response = await stack.client.post("/upload", files={"file": ("people.csv", CSV, "application/octet-stream")})
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/jobs/{body['job_id']}"
    assert body["status"] == "pending"
    assert (body["filename"], body["format"], body["bytes"], body["dataset"]) == (
        "people.csv",
        "csv",
        len(CSV),
        "contacts",
    )


async def test_a_job_is_visible_as_soon_as_its_upload_is_answered(stack: Stack) -> None:
    accepted = await stack.upload(CSV)  # no consumer runs yet
    response = await stack.client.get(f"/jobs/{accepted['job_id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"


async def test_the_stored_file_is_named_by_the_server_and_the_client_name_is_only_shown(stack: Stack) -> None:
    response = await stack.client.post("/upload", files={"file": ("../../etc/evil.csv", CSV, "text/csv")})
    assert response.status_code == 202
    body = response.json()
    assert body["filename"] == "evil.csv"
    stored = sorted(p.name for p in Path(stack.settings.upload_dir).iterdir())
    assert stored == [body["job_id"]]


async def test_the_upload_is_stored_byte_for_byte_with_its_sha256(stack: Stack) -> None:
    import hashlib

    content = CSV * 1000
    body = await stack.upload(content)
    stored = (Path(stack.settings.upload_dir) / body["job_id"]).read_bytes()
    assert stored == content
    assert body["sha256"] == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/csv", "csv"),
        ("text/csv; charset=utf-8", "csv"),
        ("application/json", "json"),
        ("application/x-ndjson", "ndjson"),
    ],
)
async def test_a_raw_body_takes_its_format_from_the_content_type(
    stack: Stack, content_type: str, expected: str
) -> None:
    body = await stack.upload(CSV, content_type)
    assert body["format"] == expected


def test_the_shown_file_name_is_its_last_part_printable_and_bounded() -> None:
    assert display_name("..\\..\\x\x00y\x1b.csv") == "xy.csv"
    assert display_name("/etc/passwd") == "passwd"
    assert display_name("a" * 1000) == "a" * 255
    assert display_name(None) == ""


def test_a_multipart_file_takes_its_format_from_its_name_then_its_type() -> None:
    assert detect_format("a.CSV", "application/octet-stream") == "csv"
    assert detect_format("a.jsonl", None) == "ndjson"
    assert detect_format("a.txt", "application/json") == "json"
    assert detect_format("blob", "application/octet-stream") is None


async def test_an_unsupported_content_type_is_415(stack: Stack) -> None:
    response = await stack.client.post("/upload", content=b"x", headers={"content-type": "application/pdf"})
    assert_problem(response, 415)


async def test_a_multipart_file_of_unknown_type_is_415(stack: Stack) -> None:
    response = await stack.client.post("/upload", files={"file": ("blob.bin", CSV, "application/octet-stream")})
    assert_problem(response, 415)
    assert list(Path(stack.settings.upload_dir).iterdir()) == []


async def test_an_empty_upload_is_400(stack: Stack) -> None:
    assert_problem(await stack.client.post("/upload", content=b"", headers={"content-type": "text/csv"}), 400)
    assert_problem(await stack.client.post("/upload", files={"file": ("a.csv", b"", "text/csv")}), 400)


async def test_a_multipart_body_without_a_file_field_is_400(stack: Stack) -> None:
    response = await stack.client.post("/upload", files={"other": ("a.csv", CSV, "text/csv")})
    assert_problem(response, 400)


async def test_an_unknown_dataset_is_404(stack: Stack) -> None:
    response = await stack.client.post(
        "/upload", params={"dataset": "nope"}, content=CSV, headers={"content-type": "text/csv"}
    )
    assert_problem(response, 404)


async def test_an_upload_past_the_size_limit_is_413_and_nothing_is_kept(stack_factory: StackFactory) -> None:
    async def undeclared_length() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 50

    async for stack in stack_factory.open(max_upload_bytes=100):
        declared = await stack.client.post("/upload", content=b"x" * 101, headers={"content-type": "text/csv"})
        assert_problem(declared, 413)
        streamed = await stack.client.post("/upload", content=undeclared_length(), headers={"content-type": "text/csv"})
        assert_problem(streamed, 413)
        assert list(Path(stack.settings.upload_dir).iterdir()) == []


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_an_unknown_job_is_404(stack: Stack, job_id: str) -> None:
    assert_problem(await stack.client.get(f"/jobs/{job_id}"), 404)
    assert_problem(await stack.client.get(f"/jobs/{job_id}/errors"), 404)


async def test_an_unknown_route_is_a_problem_too(stack: Stack) -> None:
    assert_problem(await stack.client.get("/nope"), 404)
    assert_problem(await stack.client.get("/upload"), 405)


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=5000", "cursor=%%%", "cursor=WzFd"])
async def test_bad_paging_parameters_are_400(stack: Stack, query: str) -> None:
    assert_problem(await stack.client.get(f"/jobs?{query}"), 400)


async def test_jobs_are_listed_newest_first_page_by_page(stack: Stack) -> None:
    ids = [(await stack.upload(CSV))["job_id"] for _ in range(5)]
    first = await stack.client.get("/jobs?limit=2")
    assert first.status_code == 200
    seen = [job["job_id"] for job in first.json()["items"]]
    cursor = first.json()["next_cursor"]
    while cursor:
        page = (await stack.client.get("/jobs", params={"limit": 2, "cursor": cursor})).json()
        seen += [job["job_id"] for job in page["items"]]
        cursor = page["next_cursor"]
    assert seen == list(reversed(ids))


async def test_jobs_are_filtered_by_status_dataset_and_time_across_pages(stack: Stack) -> None:
    stack.start_consumers()
    done = [(await stack.ingest(CSV))["job_id"] for _ in range(3)]
    middle = (await stack.client.get(f"/jobs/{done[1]}")).json()["received_at"]
    await stack.stop_consumers()
    waiting = (await stack.upload(CSV))["job_id"]

    async def listed(**params: str) -> list[str]:
        ids, cursor = [], None
        while True:
            response = await stack.client.get(
                "/jobs", params={**params, "limit": "1", **({"cursor": cursor} if cursor else {})}
            )
            assert response.status_code == 200, response.text
            ids += [job["job_id"] for job in response.json()["items"]]
            if not (cursor := response.json()["next_cursor"]):
                return ids

    assert await listed(status="completed") == done[::-1]
    assert await listed(status="pending,failed") == [waiting]
    assert await listed(dataset="contacts", since=middle) == [waiting, done[2], done[1]]
    assert await listed(until=middle) == [done[0]]
    assert await listed(dataset="nope") == []
    for bad in ({"status": "done"}, {"since": "yesterday"}, {"until": "2024-05-01T00:00:00"}):
        assert_problem(await stack.client.get("/jobs", params=bad), 400)


async def test_health_and_readiness(stack: Stack) -> None:
    assert (await stack.client.get("/healthz")).json() == {"status": "ok"}
    assert (await stack.client.get("/readyz")).json() == {"status": "ready"}
