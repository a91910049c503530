"""Idempotent uploads: one job per Idempotency-Key, and every job knows when its file came before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ingestro.streams.names import idempotency_key
from tests.stack import Stack, StackFactory
from tests.test_api import CSV, assert_problem

OTHER_CSV = b"email,first_name,last_name,signup_date\nb@example.com,B,C,2024-01-06\n"


async def send(stack: Stack, content: bytes, key: str, **params: str) -> object:
    headers = {"content-type": "text/csv", "idempotency-key": key}
    return await stack.client.post("/upload", content=content, headers=headers, params=params)


async def test_the_same_key_and_file_give_back_the_original_job(stack: Stack) -> None:
    first = await stack.client.post(
        "/upload", content=CSV, headers={"content-type": "text/csv", "idempotency-key": "k-1"}
    )
    assert first.status_code == 202
    again = await stack.client.post(
        "/upload", content=CSV, headers={"content-type": "text/csv", "idempotency-key": "k-1"}
    )
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await stack.pool.fetchval("SELECT count(*) FROM jobs") == 1
    assert len(list(stack.settings.upload_dir.iterdir())) == 1  # the repeat's copy is not kept


async def test_the_same_file_sent_as_multipart_is_the_same_request(stack: Stack) -> None:
    headers = {"idempotency-key": "k-multi"}
    first = await stack.client.post("/upload", files={"file": ("a.csv", CSV, "text/csv")}, headers=headers)
    again = await stack.client.post("/upload", files={"file": ("a.csv", CSV, "text/csv")}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["job_id"] == first.json()["job_id"]


async def test_the_same_key_with_other_content_or_options_is_422(stack: Stack) -> None:
    assert (
        await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", "idempotency-key": "k"})
    ).status_code == 202
    other_file = await stack.client.post(
        "/upload", content=OTHER_CSV, headers={"content-type": "text/csv", "idempotency-key": "k"}
    )
    assert_problem(other_file, 422)
    other_options = await stack.client.post(
        "/upload", content=CSV, params={"max_errors": "3"}, headers={"content-type": "text/csv", "idempotency-key": "k"}
    )
    assert_problem(other_options, 422)
    assert await stack.pool.fetchval("SELECT count(*) FROM jobs") == 1


async def test_a_key_is_409_while_its_first_upload_is_still_being_received(stack: Stack) -> None:
    more = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield CSV[:10]
        await more.wait()
        yield CSV[10:]

    headers = {"content-type": "text/csv", "idempotency-key": "slow"}
    first = asyncio.create_task(stack.client.post("/upload", content=slow_body(), headers=headers))
    while not await stack.redis.exists(idempotency_key("default:-", "slow")):
        await asyncio.sleep(0.01)
    response = await stack.client.post("/upload", content=CSV, headers=headers)
    assert_problem(response, 409)
    assert response.headers["retry-after"]
    more.set()
    assert (await first).status_code == 202
    assert (await stack.client.post("/upload", content=CSV, headers=headers)).status_code == 200


async def test_a_refused_upload_frees_its_key(stack: Stack) -> None:
    assert_problem(
        await stack.client.post("/upload", content=b"", headers={"content-type": "text/csv", "idempotency-key": "k"}),
        400,
    )
    assert (
        await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", "idempotency-key": "k"})
    ).status_code == 202


async def test_keys_expire_after_the_configured_time(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(idempotency_ttl_s=1):
        headers = {"content-type": "text/csv", "idempotency-key": "k"}
        first = await stack.client.post("/upload", content=CSV, headers=headers)
        assert 0 < await stack.redis.ttl(idempotency_key("default:-", "k")) <= 1
        await asyncio.sleep(1.2)
        later = await stack.client.post("/upload", content=CSV, headers=headers)
        assert later.status_code == 202 and later.json()["job_id"] != first.json()["job_id"]


async def test_an_unusable_key_is_400(stack: Stack) -> None:
    for key in (b"", b"x" * 256, b"with space", "caf\u00e9".encode()):
        response = await stack.client.post(
            "/upload", content=CSV, headers={"content-type": "text/csv", "idempotency-key": key}
        )
        assert_problem(response, 400)


async def test_a_job_lists_the_earlier_jobs_of_the_same_file(stack: Stack) -> None:
    first = (await stack.upload(CSV))["job_id"]
    other = (await stack.upload(OTHER_CSV))["job_id"]
    second = (await stack.upload(CSV))["job_id"]
    third = (await stack.upload(CSV))["job_id"]
    views = {job_id: (await stack.client.get(f"/jobs/{job_id}")).json() for job_id in (first, other, second, third)}
    assert views[first]["previously_ingested_as"] == []
    assert views[other]["previously_ingested_as"] == []
    assert views[second]["previously_ingested_as"] == [first]
    assert views[third]["previously_ingested_as"] == [first, second]
    assert views[third]["sha256"] == views[first]["sha256"]
    listed = {job["job_id"]: job for job in (await stack.client.get("/jobs")).json()["items"]}
    assert listed[third]["previously_ingested_as"] == [first, second]


async def test_keys_are_per_caller(stack_factory: StackFactory) -> None:
    from ingestro.database import keys
    from ingestro.database.keys import Scope

    async for stack in stack_factory.open(keys=True):
        ids = []
        for name in ("one", "two"):
            _, token = await keys.create(stack.pool, name, Scope.UPLOAD, "default")
            headers = {"content-type": "text/csv", "idempotency-key": "same", "authorization": f"Bearer {token}"}
            response = await stack.client.post("/upload", content=CSV, headers=headers)
            assert response.status_code == 202
            ids.append(response.json()["job_id"])
        assert ids[0] != ids[1]
