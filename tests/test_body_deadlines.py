"""Slow request bodies are cut off: an idle timeout and a minimum rate, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingestro.config import Settings
from ingestro.database.keys import Scope
from tests.served import app_of, served
from tests.stack import StackFactory
from tests.test_access import bearer
from tests.test_api import CSV

IDLE_S = 1.0


async def stalled_request(url: str, request_line: str, headers: dict[str, str], sent: bytes) -> bytes:
    """Declare a 10,000-byte body, send ``sent`` of it, then wait: everything the server answers until it closes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = "".join(f"{name}: {value}\r\n" for name, value in {**headers, "content-length": "10000"}.items())
    writer.write(f"{request_line} HTTP/1.1\r\nhost: {host}\r\n{head}\r\n".encode() + sent)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), IDLE_S + 10)  # until the server closes the connection
    finally:
        writer.close()


def status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), answer
    return int(head.split(b" ", 2)[1]), body


def cut_off_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
    return [record for record in caplog.records if record.getMessage() == "request body cut off"]


async def test_stalled_uploads_are_cut_off_free_their_slots_and_leave_no_partial_file(
    stack_factory: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async for stack in stack_factory.open(keys=True, max_concurrent_uploads=4, body_idle_timeout_s=IDLE_S):
        auth = await bearer(stack, Scope.UPLOAD)
        multipart = {"content-type": "multipart/form-data; boundary=x", **auth}
        part = b'--x\r\ncontent-disposition: form-data; name="file"; filename="a.csv"\r\n\r\nemail,first'
        async with served(app_of(stack)) as url:
            started = time.monotonic()
            answers = await asyncio.gather(
                *(stalled_request(url, "POST /upload", {"content-type": "text/csv", **auth}, CSV[:10]) for _ in "ab"),
                *(stalled_request(url, "POST /upload", multipart, part) for _ in "cd"),
            )
            assert time.monotonic() - started < IDLE_S + 3
            for answer in answers:
                status, body = status_and_body(answer)
                assert status == 408 and b"sent nothing for 1 s (INGESTRO_BODY_IDLE_TIMEOUT_S)" in body
            # Four uploads at once was the key's limit: the four cut off gave their places back.
            fifth = await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **auth})
            assert fifth.status_code == 202, fifth.text
        assert sorted(path.name for path in Path(stack.settings.upload_dir).iterdir()) == [fifth.json()["job_id"]]
        lines = cut_off_lines(caplog)
        assert len(lines) == 4
        assert {(record.levelname, record.path) for record in lines} == {("WARNING", "/upload")}  # type: ignore[attr-defined]


async def test_a_body_slower_than_the_minimum_rate_is_cut_off(
    stack_factory: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async for stack in stack_factory.open(body_idle_timeout_s=IDLE_S, body_min_rate=100):
        async with served(app_of(stack)) as url:
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-type: text/csv\r\ncontent-length: 10000\r\n\r\n")
            started = time.monotonic()
            answering = asyncio.create_task(reader.read())  # everything, until the server closes
            for byte in CSV * 10:  # a byte every 0.25 s: never idle for 1 s, but 4 bytes/s
                with contextlib.suppress(ConnectionError):
                    writer.write(bytes([byte]))
                    await writer.drain()
                if (await asyncio.wait({answering}, timeout=0.25))[0]:
                    break
            answer = await answering
            writer.close()
            elapsed = time.monotonic() - started
        status, body = status_and_body(answer)
        assert status == 408 and b"slower than 100 bytes/s on average (INGESTRO_BODY_MIN_RATE)" in body
        assert IDLE_S < elapsed < IDLE_S + 2
        assert len(cut_off_lines(caplog)) == 1
        assert list(Path(stack.settings.upload_dir).iterdir()) == []


async def test_a_stalled_declaration_is_cut_off_too(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(body_idle_timeout_s=IDLE_S):
        async with served(app_of(stack)) as url:
            answer = await stalled_request(url, "PUT /datasets/x", {"content-type": "application/json"}, b'{"na')
        status, _ = status_and_body(answer)
        assert status == 408


async def test_a_body_sent_at_a_normal_pace_is_not_cut_off(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(body_idle_timeout_s=IDLE_S, body_min_rate=100):

        async def paced() -> AsyncIterator[bytes]:
            for start in range(0, len(CSV), 20):
                yield CSV[start : start + 20]
                await asyncio.sleep(0.1)

        response = await stack.client.post("/upload", content=paced(), headers={"content-type": "text/csv"})
        assert response.status_code == 202, response.text


def test_the_body_deadlines_default_to_30_s_idle_and_1_kib_per_s() -> None:
    # A bad value of either is refused like every setting's (tests/test_settings.py).
    defaults = Settings.from_env({})
    assert (defaults.body_idle_timeout_s, defaults.body_min_rate) == (30, 1024)


async def test_a_client_that_leaves_mid_body_frees_its_slot_and_is_one_line_not_a_traceback(
    stack_factory: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingestro.api.body_deadlines")
    async for stack in stack_factory.open(keys=True, max_concurrent_uploads=1, body_idle_timeout_s=30):
        auth = await bearer(stack, Scope.UPLOAD)
        async with served(app_of(stack)) as url:
            host, port = url.removeprefix("http://").split(":")
            _, writer = await asyncio.open_connection(host, int(port))
            head = f"content-type: text/csv\r\ncontent-length: 10000\r\nauthorization: {auth['authorization']}\r\n"
            writer.write(f"POST /upload HTTP/1.1\r\nhost: {host}\r\n{head}\r\n".encode() + CSV[:10])
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.close()  # gone, 9,990 bytes short
            await asyncio.sleep(0.5)
            # The key may send one upload at once: the one that left gave its place back at once.
            again = await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **auth})
            assert again.status_code == 202, again.text
        assert sorted(path.name for path in Path(stack.settings.upload_dir).iterdir()) == [again.json()["job_id"]]
        assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
        gone = [r for r in caplog.records if r.getMessage() == "request body cut off: the client went away"]
        assert [record.path for record in gone] == ["/upload"]  # type: ignore[attr-defined]
