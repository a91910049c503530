"""Per-API-key limits: request rate and uploads at once, shared by every API process through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from ingestro.api.app import create_app
from ingestro.api.upload_slots import give_back, take_lease
from ingestro.config import Settings
from ingestro.database import keys
from ingestro.database.keys import Scope
from tests.stack import Stack, StackFactory, stack_settings
from tests.test_api import CSV, assert_problem
from tests.test_metrics import counter


async def bearer(stack: Stack, name: str, scope: Scope = Scope.UPLOAD) -> dict[str, str]:
    _, token = await keys.create(stack.pool, name, scope, "default")
    return {"authorization": f"Bearer {token}"}


async def test_a_key_past_its_rate_gets_429_with_retry_after_and_other_keys_do_not(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(keys=True, rate_limit=2, rate_burst=3):
        busy, calm = await bearer(stack, "busy"), await bearer(stack, "calm")
        for _ in range(3):  # the burst
            assert (await stack.client.get("/jobs", headers=busy)).status_code == 200
        refused = await stack.client.get("/jobs", headers=busy)
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        assert (await stack.client.get("/jobs", headers=calm)).status_code == 200
        await asyncio.sleep(0.6)  # one token back at 2 per second
        assert (await stack.client.get("/jobs", headers=busy)).status_code == 200
        assert_problem(await stack.client.get("/jobs", headers=busy), 429)


async def test_every_api_process_draws_on_the_same_bucket(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(keys=True, rate_limit=0.5, rate_burst=4):
        auth = await bearer(stack, "shared")
        other = create_app(stack.settings)  # a second API process on the same Redis and PostgreSQL
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as second:
                for client in (stack.client, second, stack.client, second):
                    assert (await client.get("/jobs", headers=auth)).status_code == 200
                assert_problem(await second.get("/jobs", headers=auth), 429)
                assert_problem(await stack.client.get("/jobs", headers=auth), 429)


async def test_without_keys_there_is_no_limit(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(rate_limit=1, rate_burst=1, max_concurrent_uploads=1):
        for _ in range(5):
            assert (await stack.client.get("/jobs")).status_code == 200
        assert {
            (await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv"})).status_code
            for _ in range(3)
        } == {202}


class HeldBody:
    """A request body that sends its first part, then waits to be let go before the rest."""

    def __init__(self) -> None:
        self.started, self.release = asyncio.Event(), asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield CSV[:20]
        self.started.set()
        await self.release.wait()
        yield CSV[20:]


async def test_a_key_sending_its_limit_of_uploads_is_refused_one_more(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(keys=True, max_concurrent_uploads=2):
        mine, theirs = await bearer(stack, "mine"), await bearer(stack, "theirs")
        headers = {"content-type": "text/csv", **mine}
        held = [HeldBody(), HeldBody()]
        sending = [asyncio.create_task(stack.client.post("/upload", content=body, headers=headers)) for body in held]
        for body in held:
            await asyncio.wait_for(body.started.wait(), 5)

        before = counter("ingestro_uploads_total", outcome="too_many_uploads", format="csv")
        refused = await stack.client.post("/upload", content=CSV, headers=headers)
        assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) > 0
        assert counter("ingestro_uploads_total", outcome="too_many_uploads", format="csv") == before + 1
        assert (
            await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **theirs})
        ).status_code == 202
        assert (await stack.client.get("/jobs", headers=mine)).status_code == 200  # reading is not uploading

        held[0].release.set()
        assert (await sending[0]).status_code == 202
        assert (
            await stack.client.post("/upload", content=CSV, headers=headers)
        ).status_code == 202  # its place is free
        held[1].release.set()
        assert (await sending[1]).status_code == 202


async def test_a_refused_or_failed_upload_gives_its_place_back(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(keys=True, max_concurrent_uploads=1):
        auth = await bearer(stack, "one")
        assert_problem(
            await stack.client.post("/upload", content=b"", headers={"content-type": "text/csv", **auth}), 400
        )
        assert (
            await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **auth})
        ).status_code == 202


async def test_the_lease_of_an_api_process_that_died_ends_by_itself(stack: Stack) -> None:
    assert await take_lease(stack.redis, "k1", "died", limit=1, lease_s=0.3)
    assert not await take_lease(stack.redis, "k1", "next", limit=1, lease_s=0.3)
    await asyncio.sleep(0.4)
    assert await take_lease(stack.redis, "k1", "next", limit=1, lease_s=0.3)
    await give_back(stack.redis, "k1", "next")
    assert await take_lease(stack.redis, "k1", "again", limit=1, lease_s=0.3)


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("INGESTRO_RATE_LIMIT", "-1", "must be a number, at least 0"),
        ("INGESTRO_RATE_LIMIT", "fast", "must be a number, at least 0"),
        ("INGESTRO_RATE_BURST", "0", "must be a whole number, at least 1"),
        ("INGESTRO_MAX_CONCURRENT_UPLOADS", "-2", "must be a whole number, at least 0"),
        ("INGESTRO_MAX_EVENT_STREAMS", "0", "must be a whole number, at least 1"),
        ("INGESTRO_EVENTS_HEARTBEAT_S", "30", "must be a number, more than 0 and at most 25"),
    ],
)
def test_a_bad_limit_setting_is_refused_naming_the_variable(variable: str, value: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"^{variable}='{value}' is not a valid value") as raised:
        Settings.from_env({variable: value})
    assert why in str(raised.value)


def test_the_limits_have_defaults(stack_factory: StackFactory) -> None:
    settings = stack_settings("redis://x", "postgresql://x", stack_factory.upload_dir)
    assert (settings.rate_limit, settings.rate_burst, settings.max_concurrent_uploads) == (50, 100, 4)
    assert (settings.max_event_streams, settings.events_heartbeat_s) == (100, 15)
