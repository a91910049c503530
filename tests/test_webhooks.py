"""Webhooks: endpoints registered over the API, job events delivered signed (Standard Webhooks) by the
``notifications`` group to a real HTTP receiver on loopback, retried, dead-lettered, never holding up a job; and
the README's receiver example verifying those very deliveries."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ingestro.database import keys
from ingestro.database.keys import Scope
from ingestro.domain.webhook_signatures import InvalidSignature, headers, new_secret, verify
from tests.served import served
from tests.stack import Stack, StackFactory

CSV = b"email,first_name,last_name,age,signup_date\na@example.com,Ann,Lee,30,2024-01-05\nnope,Bob,Ray,x,2024-01-05\n"
ALLOW_LOOPBACK = "127.0.0.0/8,::1"


def readme_verify() -> Callable[[str, dict[str, str], bytes], None]:
    """The receiver example of the README, run as it is printed there."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"<!-- webhook-receiver -->\n```python\n(.*?)```", readme, re.S)
    assert code is not None, "the README's receiver example is gone"
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # noqa: S102 (the README's own text, run as a reader would)
    verify_: Callable[[str, dict[str, str], bytes], None] = namespace["verify"]
    return verify_


def test_signatures_verify_with_each_secret_of_a_rotation_and_not_otherwise() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"job.completed"}'
    signed = headers([new, old], "msg_1", int(time.time()), body)
    assert signed["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        verify(secret, signed, body)
        readme_verify()(secret, signed, body)
    for bad in (new_secret(),):
        with pytest.raises(InvalidSignature):
            verify(bad, signed, body)
        with pytest.raises(ValueError, match="bad signature"):
            readme_verify()(bad, signed, body)
    with pytest.raises(ValueError, match="bad signature"):
        readme_verify()(new, signed, body + b" ")
    stale = headers([new], "msg_1", int(time.time()) - 3600, body)
    with pytest.raises(ValueError, match="stale"):
        readme_verify()(new, stale, body)


class Receiver:
    """A webhook receiver: every delivery it got, answering ``status`` (or never, with ``hang``)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.hang = False
        self.released = asyncio.Event()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.deliveries.append((dict(request.headers), await request.body()))
            if self.hang:
                await self.released.wait()
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hooks = Receiver()
    async with served(hooks.app()) as url:
        try:
            yield hooks, f"{url}/hook"
        finally:
            hooks.released.set()


@pytest.fixture
async def stack(stack_factory: StackFactory) -> AsyncIterator[Stack]:
    async for running in stack_factory.open(import_allow=ALLOW_LOOPBACK, webhook_attempts=2):
        running.start_consumers()
        yield running


async def _register(stack: Stack, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = await stack.client.post("/webhooks", json={"url": url, **({"events": events} if events else {})})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["secret"].startswith("whsec_")
    return body


async def _until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_finished_job_is_delivered_signed_once_per_endpoint(
    stack: Stack, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    endpoint = await _register(stack, url)
    await _register(stack, url, ["job.failed"])  # not subscribed to completed: gets nothing
    job = await stack.ingest(CSV)
    assert job["status"] == "completed"
    await _until(lambda: len(hooks.deliveries) == 1)
    await stack.wait_idle()
    assert len(hooks.deliveries) == 1
    received, body = hooks.deliveries[0]
    readme_verify()(endpoint["secret"], received, body)
    message = orjson.loads(body)
    assert message["type"] == "job.completed"
    assert message["data"]["job_id"] == job["job_id"]
    assert (message["data"]["rows_accepted"], message["data"]["rows_rejected"]) == (1, 1)
    assert received["webhook-id"] == f"msg_{job['job_id']}_completed"
    assert received["content-type"] == "application/json"


async def test_rotation_signs_with_both_secrets(stack: Stack, receiver: tuple[Receiver, str]) -> None:
    hooks, url = receiver
    first = await _register(stack, url)
    rotated = (await stack.client.post(f"/webhooks/{first['webhook_id']}/rotate")).json()
    assert rotated["secret"] != first["secret"]
    await stack.ingest(CSV)
    await _until(lambda: len(hooks.deliveries) == 1)
    received, body = hooks.deliveries[0]
    for secret in (first["secret"], rotated["secret"]):
        readme_verify()(secret, received, body)


async def test_a_failing_endpoint_is_retried_then_dead_lettered(stack: Stack, receiver: tuple[Receiver, str]) -> None:
    hooks, url = receiver
    hooks.status = 503
    endpoint = await _register(stack, url)
    job = await stack.ingest(CSV)
    await _until(lambda: len(hooks.deliveries) == 2)  # INGESTRO_WEBHOOK_ATTEMPTS=2
    assert len({received["webhook-id"] for received, _ in hooks.deliveries}) == 1, "one id for every retry"
    letters: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not letters:
        assert time.monotonic() < deadline
        response = await stack.client.get(f"/webhooks/{endpoint['webhook_id']}/dead-letters")
        letters = response.json()["items"]
        await asyncio.sleep(0.05)
    assert letters[0]["event_id"] == f"msg_{job['job_id']}_completed"
    assert (letters[0]["attempts"], letters[0]["error"]) == (2, "the endpoint answered 503")
    assert letters[0]["payload"]["type"] == "job.completed"


async def test_a_receiver_that_never_answers_holds_up_no_job(stack: Stack, receiver: tuple[Receiver, str]) -> None:
    hooks, url = receiver
    hooks.hang = True
    await _register(stack, url)
    started = time.monotonic()
    first = await stack.ingest(CSV)
    await _until(lambda: len(hooks.deliveries) == 1)
    second = await stack.ingest(CSV.replace(b"a@example", b"c@example"))
    assert (first["status"], second["status"]) == ("completed", "completed")
    assert time.monotonic() - started < 8, "jobs waited on the receiver"


async def test_endpoints_are_the_tenants_and_checked(stack: Stack, stack_factory: StackFactory) -> None:
    created = await _register(stack, "http://127.0.0.1:9/hook")
    listed = (await stack.client.get("/webhooks")).json()["items"]
    assert listed == [
        {"webhook_id": created["webhook_id"], "url": "http://127.0.0.1:9/hook", "events": created["events"]}
    ]
    assert created["events"] == ["job.completed", "job.failed", "job.stalled"]
    for body, detail in [
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": "http://169.254.169.254/x"}, "metadata"),
        ({"url": "https://example.com/h", "events": ["job.deleted"]}, "unknown events"),
        ({"url": "https://example.com:70000/h"}, "not a URL"),
        ({"url": "https://example.com/h", "events": [["job.failed"]]}, "unknown events"),
        ({"events": []}, "the body must be"),
    ]:
        response = await stack.client.post("/webhooks", json=body)
        assert response.status_code == 400 and detail in response.json()["detail"], response.text
    assert (await stack.client.delete(f"/webhooks/{created['webhook_id']}")).status_code == 204
    assert (await stack.client.delete(f"/webhooks/{created['webhook_id']}")).status_code == 404
    assert (await stack.client.post("/webhooks/not-a-uuid/rotate")).status_code == 404


async def test_without_the_allow_list_a_loopback_endpoint_is_refused(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open():
        response = await stack.client.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert response.status_code == 400
        assert "127.0.0.1 is not a public address" in response.json()["detail"]


async def test_endpoints_belong_to_a_tenant_and_need_an_admin_key(
    stack_factory: StackFactory, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    async for stack in stack_factory.open(keys=True, import_allow=ALLOW_LOOPBACK):
        stack.start_consumers()
        acme, globex = [
            {"authorization": f"Bearer {(await keys.create(stack.pool, tenant, Scope.ADMIN, tenant))[1]}"}
            for tenant in ("acme", "globex")
        ]
        uploader = {"authorization": f"Bearer {(await keys.create(stack.pool, 'ci', Scope.UPLOAD, 'acme'))[1]}"}
        assert (await stack.client.post("/webhooks", json={"url": url}, headers=uploader)).status_code == 403
        created = await stack.client.post("/webhooks", json={"url": url}, headers=acme)
        assert created.status_code == 201
        webhook_id = created.json()["webhook_id"]
        assert (await stack.client.get("/webhooks", headers=globex)).json() == {"items": []}
        assert (await stack.client.delete(f"/webhooks/{webhook_id}", headers=globex)).status_code == 404
        assert (await stack.client.get(f"/webhooks/{webhook_id}/dead-letters", headers=globex)).status_code == 404
        # Another tenant's job is not told to acme's endpoint; acme's own is.
        for auth in (globex, uploader):
            response = await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **auth})
            assert response.status_code == 202, response.text
        await _until(lambda: len(hooks.deliveries) >= 1)
        await stack.wait_idle()
        assert [orjson.loads(body)["data"]["job_id"] for _, body in hooks.deliveries] == [response.json()["job_id"]]
