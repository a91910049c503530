"""``GET /jobs/{id}/events``: a job's progress and status as Server-Sent Events, fed by the streams."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from ingestro.api.context import AppContext
from ingestro.database import keys
from ingestro.database.keys import Scope
from ingestro.domain.events import BatchApplied, Event, JobStatusChanged, ParseCompleted
from ingestro.services.consumer_groups import GROUP_STREAMS
from ingestro.streams.names import JOB_STATUS_STREAM
from ingestro.streams.publisher import publish
from tests.served import app_of, served
from tests.stack import Stack, StackFactory
from tests.test_api import CSV, assert_problem

COUNTS = ("rows_total", "rows_accepted", "rows_rejected", "rows_inserted", "rows_updated", "rows_duplicate")


def contacts(valid: int, invalid: int) -> bytes:
    lines = [b"email,first_name,last_name,signup_date"]
    lines += [f"p{i}@example.com,P,Q,2024-01-02".encode() for i in range(valid)]
    lines += [f"bad{i},P,Q,2024-01-02".encode() for i in range(invalid)]
    return b"\n".join(lines) + b"\n"


async def events_of(response: httpx.Response, until: int | None = None) -> AsyncIterator[tuple[str, Any]]:
    """The stream's events as (name, data); comments as (":", text). Stops after ``until`` items, or at its end."""
    name: str | None = None
    seen = 0
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield ":", line[1:].strip()
        elif line.startswith("event: "):
            name = line[len("event: ") :]
            continue
        elif line.startswith("data: "):
            assert name is not None
            yield name, orjson.loads(line[len("data: ") :])
        else:
            continue
        seen += 1
        if until is not None and seen >= until:
            return


async def collect(client: httpx.AsyncClient, job_id: str, timeout: float = 60, **headers: str) -> list[tuple[str, Any]]:
    """Every event of the job's stream, which must end by itself."""
    async with asyncio.timeout(timeout):
        async with client.stream("GET", f"/jobs/{job_id}/events", headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            return [event async for event in events_of(response) if event[0] != ":"]


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with served(app_of(stack)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client


async def test_a_job_is_followed_from_pending_to_completed_with_its_final_counts(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    job_id = (await stack.upload(contacts(valid=250, invalid=120)))["job_id"]  # several batches of each kind
    following = asyncio.create_task(collect(http, job_id))
    await asyncio.sleep(0.3)  # the client is connected to a job no consumer has touched
    stack.start_consumers()
    events = await following

    job = (await stack.client.get(f"/jobs/{job_id}")).json()
    assert job["status"] == "completed"
    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses[0] == "pending" and statuses[-1] == "completed" and "processing" in statuses
    assert events[-1][0] == "status", "the stream ends with the final status"
    progress = [data for name, data in events if name == "progress"]
    assert progress[-1] == {"job_id": job_id, **{name: job[name] for name in COUNTS}}
    assert progress[-1]["rows_total"] == 370 and progress[-1]["rows_rejected"] == 120
    for earlier, later in itertools.pairwise(progress):  # counts only grow
        assert all((later[name] or 0) >= (earlier[name] or 0) for name in COUNTS)
    assert len(progress) >= 2


async def test_a_finished_job_is_told_at_once_and_the_stream_ends(stack: Stack, http: httpx.AsyncClient) -> None:
    stack.start_consumers()
    job = await stack.ingest(CSV)
    events = await collect(http, job["job_id"], timeout=5)
    assert events == [
        ("progress", {"job_id": job["job_id"], **{name: job[name] for name in COUNTS}}),
        ("status", {"job_id": job["job_id"], "status": "completed", "error": None}),
    ]


async def test_a_failed_job_ends_its_stream_with_the_reason(stack: Stack, http: httpx.AsyncClient) -> None:
    job_id = (await stack.upload(b'[{"email": ', "application/json"))["job_id"]
    following = asyncio.create_task(collect(http, job_id))
    await asyncio.sleep(0.2)
    stack.start_consumers()
    events = await following
    name, last = events[-1]
    assert name == "status" and last["status"] == "failed" and last["error"].startswith("invalid JSON")


async def test_the_stream_is_fed_by_the_status_stream_not_by_the_database(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    job_id = (await stack.upload(CSV))["job_id"]  # no consumer: the row stays pending
    following = asyncio.create_task(collect(http, job_id, timeout=10))
    await asyncio.sleep(0.3)
    await stack.pool.execute("UPDATE jobs SET status = 'completed' WHERE job_id = $1::uuid", job_id)
    await asyncio.sleep(0.5)
    assert not following.done(), "a change of the row alone is not seen: nothing polls the database"
    told = JobStatusChanged(job_id, "completed", "pending", 1, 1, 0, 1, 0, None)
    await publish(stack.redis, told)
    events = await following
    assert events[-2:] == [
        (
            "progress",
            {
                "job_id": job_id,
                "rows_total": 1,
                "rows_accepted": 1,
                "rows_rejected": 0,
                "rows_inserted": 1,
                "rows_updated": 0,
                "rows_duplicate": 0,
            },
        ),
        ("status", {"job_id": job_id, "status": "completed", "error": None}),
    ]


async def test_progress_adds_each_batch_once_as_its_events_arrive(stack: Stack, http: httpx.AsyncClient) -> None:
    job_id = (await stack.upload(CSV))["job_id"]  # no consumer: the events are the test's own
    async with asyncio.timeout(10), http.stream("GET", f"/jobs/{job_id}/events") as response:
        events = events_of(response)
        assert [(await anext(events))[0], (await anext(events))[0]] == ["progress", "status"]

        async def after(event: Event) -> Any:
            await publish(stack.redis, event)
            name, data = await anext(events)
            return name, {key: value for key, value in data.items() if key != "job_id"}

        zero = {
            "rows_total": None,
            "rows_accepted": 0,
            "rows_rejected": 0,
            "rows_inserted": 0,
            "rows_updated": 0,
            "rows_duplicate": 0,
        }
        assert await after(BatchApplied(job_id, "data", 0, rows=100, inserted=90, duplicate=10)) == (
            "progress",
            {**zero, "rows_accepted": 100, "rows_inserted": 90, "rows_duplicate": 10},
        )
        await publish(stack.redis, BatchApplied(job_id, "data", 0, rows=100, inserted=90, duplicate=10))  # again: once
        await publish(
            stack.redis, BatchApplied(str(uuid.uuid4()), "errors", 0, rows=5, inserted=0, duplicate=0)
        )  # another job's
        assert await after(BatchApplied(job_id, "errors", 0, rows=7, inserted=0, duplicate=0)) == (
            "progress",
            {**zero, "rows_accepted": 100, "rows_inserted": 90, "rows_duplicate": 10, "rows_rejected": 7},
        )
        parsed = ParseCompleted(job_id, 107, 100, 7, accepted_batches=1, rejected_batches=1, unknown_columns=[])
        assert (await after(parsed))[1]["rows_total"] == 107
        assert await after(JobStatusChanged(job_id, "processing", "pending", 107, 100, 7, 90, 10, None)) == (
            "status",
            {"status": "processing", "error": None},
        )
        assert await after(JobStatusChanged(job_id, "completed", "processing", 107, 100, 7, 90, 10, None)) == (
            "status",
            {"status": "completed", "error": None},
        )
        assert [event async for event in events] == []  # and the stream ends


async def test_the_jobs_projection_announces_each_status_change_after_its_commit(stack: Stack) -> None:
    stack.start_consumers()
    job = await stack.ingest(contacts(valid=150, invalid=0))
    await stack.wait_idle()
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await stack.redis.xrange(JOB_STATUS_STREAM)  # type: ignore[assignment]
    told = [orjson.loads(fields[b"data"]) for _, fields in entries]
    mine = [change for change in told if change["job_id"] == job["job_id"]]
    assert [change["status"] for change in mine][-1] == "completed"
    assert {change["status"] for change in mine} <= {"processing", "completed"}
    assert {name: mine[-1][name] for name in COUNTS} == {name: job[name] for name in COUNTS}
    # One group reads it (webhooks' notifications), and followers XREAD it besides.
    assert [group["name"] for group in await stack.redis.xinfo_groups(JOB_STATUS_STREAM)] == [b"notifications"]
    assert [group for group, streams in GROUP_STREAMS.items() if JOB_STATUS_STREAM in streams] == ["notifications"]


async def test_an_idle_stream_sends_keepalives(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(events_heartbeat_s=0.2):
        job_id = (await stack.upload(CSV))["job_id"]
        async with (
            served(app_of(stack)) as url,
            httpx.AsyncClient(base_url=url) as client,
            client.stream("GET", f"/jobs/{job_id}/events") as response,
        ):
            started = time.monotonic()
            events = [event async for event in events_of(response, until=4)]
        assert [name for name, _ in events] == ["progress", "status", ":", ":"]
        assert events[2][1] == "keepalive" and time.monotonic() - started < 3


async def test_clients_that_go_away_leave_no_stream_task_or_redis_connection(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(events_heartbeat_s=0.2):
        job_id = (await stack.upload(CSV))["job_id"]
        context: AppContext = app_of(stack).state.context  # type: ignore[attr-defined]
        async with served(app_of(stack)) as url:
            clients_before = len(await stack.redis.client_list())
            tasks_before = len(asyncio.all_tasks())
            for _ in range(2):  # twice: what the first round left would show in the second
                clients = [httpx.AsyncClient(base_url=url) for _ in range(5)]
                responses = [
                    await client.send(client.build_request("GET", f"/jobs/{job_id}/events"), stream=True)
                    for client in clients
                ]
                for response in responses:
                    assert [name async for name, _ in events_of(response, until=2)] == ["progress", "status"]
                assert context.event_streams.open == 5
                for response, client in zip(responses, clients, strict=True):
                    await response.aclose()
                    await client.aclose()
                deadline = time.monotonic() + 5
                while context.event_streams.open or len(await stack.redis.client_list()) > clients_before:
                    assert time.monotonic() < deadline, (context.event_streams.open, await stack.redis.client_list())
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            assert len(asyncio.all_tasks()) <= tasks_before


async def test_streams_past_the_cap_are_refused_with_503_until_one_ends(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(max_event_streams=2):
        job_id = (await stack.upload(CSV))["job_id"]
        async with served(app_of(stack)) as url, httpx.AsyncClient(base_url=url) as client:
            first = await client.send(client.build_request("GET", f"/jobs/{job_id}/events"), stream=True)
            second = await client.send(client.build_request("GET", f"/jobs/{job_id}/events"), stream=True)
            refused = await client.get(f"/jobs/{job_id}/events")
            assert_problem(refused, 503)
            assert int(refused.headers["retry-after"]) > 0
            await first.aclose()
            await asyncio.sleep(0.3)
            third = await client.send(client.build_request("GET", f"/jobs/{job_id}/events"), stream=True)
            assert third.status_code == 200
            for response in (second, third):
                await response.aclose()


async def test_only_those_who_may_read_the_job_may_follow_it(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(keys=True):
        _, owner = await keys.create(stack.pool, "owner", Scope.UPLOAD, "acme")
        mine = {"authorization": f"Bearer {owner}"}
        response = await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **mine})
        job_id = response.json()["job_id"]
        stack.start_consumers()
        async with served(app_of(stack)) as url, httpx.AsyncClient(base_url=url) as client:
            for scope, tenant in ((Scope.UPLOAD, "acme"), (Scope.ADMIN, "globex")):
                _, token = await keys.create(stack.pool, f"{scope.value}-{tenant}", scope, tenant)
                assert_problem(
                    await client.get(f"/jobs/{job_id}/events", headers={"authorization": f"Bearer {token}"}), 404
                )
            assert_problem(await client.get(f"/jobs/{job_id}/events"), 401)
            _, reader = await keys.create(stack.pool, "reader", Scope.READ, "acme")
            for token in (owner, reader):
                events = await collect(client, job_id, authorization=f"Bearer {token}")
                assert events[-1][1]["status"] == "completed"


async def test_a_key_revoked_while_it_follows_a_job_loses_the_stream_within_a_heartbeat(
    stack_factory: StackFactory,
) -> None:
    async for stack in stack_factory.open(keys=True, events_heartbeat_s=0.3):
        key, token = await keys.create(stack.pool, "follower", Scope.UPLOAD, "acme")
        auth = {"authorization": f"Bearer {token}"}
        response = await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **auth})
        job_id = response.json()["job_id"]  # no consumer: the job stays pending, the stream open
        async with (
            served(app_of(stack)) as url,
            httpx.AsyncClient(base_url=url) as client,
            client.stream("GET", f"/jobs/{job_id}/events", headers=auth) as stream,
        ):
            events = events_of(stream)
            assert [(await anext(events))[0], (await anext(events))[0]] == ["progress", "status"]
            assert await keys.revoke(stack.pool, key.key_id)
            revoked = time.monotonic()
            async with asyncio.timeout(5):
                rest = [event async for event in events]
            assert time.monotonic() - revoked < 0.3 * 2 + 0.5, "ended within about a heartbeat"
            assert rest[-1] == (":", "the API key was revoked")
            assert all(name == ":" for name, _ in rest)
