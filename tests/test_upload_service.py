"""The upload service (ingestro.services.uploads) in plain values, without HTTP: what it stores, announces and seeds,
and the domain errors it raises. The HTTP side is held to its answers by test_api.py and test_idempotency.py."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingestro.datasets.registry import DatasetRegistry
from ingestro.domain import codec
from ingestro.domain.events import UploadOptions
from ingestro.services.uploads import Accepted, Discarded, EmptyUpload, FileFacts, Uploader, Uploads
from ingestro.storage import TooLarge, storage_for
from ingestro.streams.names import FILES_STREAM
from tests.stack import Stack

CSV = b"email,first_name,last_name,signup_date\na@example.com,A,B,2024-01-01\n"
UPLOADER = Uploader("acme", "key1")


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def facts(filename: str | None = "x.csv", file_format: str | None = "csv", gzip: bool = False) -> FileFacts:
    return FileFacts(filename, file_format, gzip)


def uploads(stack: Stack, limit: int = 1 << 20) -> Uploads:
    return Uploads(stack.redis, stack.pool, storage_for(stack.settings), limit)


def stored_files(stack: Stack) -> list[Path]:
    return [path for path in Path(stack.settings.upload_dir).rglob("*") if path.is_file()]


async def test_an_upload_is_stored_announced_and_its_job_row_seeded(stack: Stack) -> None:
    contacts = await DatasetRegistry(stack.pool).latest("contacts")

    outcome = await uploads(stack).receive(
        chunks_of(CSV[:10], CSV[10:]),
        lambda: facts("../dir/x.csv.gz", "csv", gzip=True),
        UPLOADER,
        contacts,
        UploadOptions(delimiter=","),
    )

    assert isinstance(outcome, Accepted)
    event = outcome.event
    assert (event.dataset, event.dataset_version, event.filename, event.format) == (
        "contacts",
        contacts.version,
        "x.csv.gz",
        "csv",
    )
    assert (event.bytes, event.sha256, outcome.sha256) == (len(CSV), hashlib.sha256(CSV).hexdigest(), event.sha256)
    assert (event.tenant, event.uploaded_by) == ("acme", "key1")
    assert (event.options.delimiter, event.options.compression) == (",", "gzip")
    [(entry_id, fields)] = await stack.redis.xrange(FILES_STREAM)
    assert entry_id.decode() == outcome.position and codec.decode(fields) == event
    row = await stack.pool.fetchrow("SELECT status, tenant, sha256, position FROM jobs WHERE job_id = $1", event.job_id)
    assert tuple(row) == ("pending", "acme", event.sha256, outcome.position)
    assert await storage_for(stack.settings).exists(event.storage_key)


async def test_a_repeat_is_received_for_its_hash_then_discarded_without_a_job(stack: Stack) -> None:
    contacts = await DatasetRegistry(stack.pool).latest("contacts")

    outcome = await uploads(stack).receive(chunks_of(CSV), facts, UPLOADER, contacts, UploadOptions(), repeat=True)

    assert outcome == Discarded(hashlib.sha256(CSV).hexdigest())
    assert await stack.redis.xlen(FILES_STREAM) == 0
    assert await stack.pool.fetchval("SELECT count(*) FROM jobs") == 0
    assert stored_files(stack) == []


@pytest.mark.parametrize(
    ("parts", "told"),
    [((), facts()), ((b"",), facts()), ((CSV,), facts(file_format=None))],
    ids=["no chunks", "empty chunk", "no format told"],
)
async def test_an_empty_upload_is_refused_and_nothing_kept(
    stack: Stack, parts: tuple[bytes, ...], told: FileFacts
) -> None:
    contacts = await DatasetRegistry(stack.pool).latest("contacts")
    with pytest.raises(EmptyUpload, match="the upload is empty"):
        await uploads(stack).receive(chunks_of(*parts), lambda: told, UPLOADER, contacts, UploadOptions())
    assert await stack.redis.xlen(FILES_STREAM) == 0
    assert stored_files(stack) == []


async def test_an_upload_past_the_limit_is_refused_and_nothing_kept(stack: Stack) -> None:
    contacts = await DatasetRegistry(stack.pool).latest("contacts")
    with pytest.raises(TooLarge):
        await uploads(stack, limit=len(CSV) - 1).receive(chunks_of(CSV), facts, UPLOADER, contacts, UploadOptions())
    assert await stack.redis.xlen(FILES_STREAM) == 0
    assert stored_files(stack) == []


async def test_when_the_event_cannot_be_announced_the_file_is_deleted(stack: Stack) -> None:
    contacts = await DatasetRegistry(stack.pool).latest("contacts")
    await stack.redis.set(FILES_STREAM, "not a stream")  # XADD fails: WRONGTYPE
    try:
        with pytest.raises(Exception, match="WRONGTYPE"):
            await uploads(stack).receive(chunks_of(CSV), facts, UPLOADER, contacts, UploadOptions())
    finally:
        await stack.redis.delete(FILES_STREAM)
    assert stored_files(stack) == []
    assert await stack.pool.fetchval("SELECT count(*) FROM jobs") == 0
