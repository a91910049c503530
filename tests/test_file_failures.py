"""Failed, not stalled: what is wrong with a file fails its job on the first delivery; only the infrastructure retries.

The rule (``ingestro.streams.runtime``, ``consumers.parser``, ``ingestro.formats.parsing``): an
error every reading of the same file would meet again is the job's outcome (``failed``, with
the reason, the rows before it counted), never a handler failure that is retried, dead-lettered
and leaves the job ``stalled`` behind a redrive that can only fail again. Only the storage
failing to give the bytes (``StorageFailed``) is retried.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ingestro.domain.events import FileReceived, ParseFailed, RowsAccepted, UploadOptions
from ingestro.formats import readers
from ingestro.formats.decoding import StorageFailed
from ingestro.formats.parsing import parse_file
from ingestro.storage.directory import LocalStorage
from ingestro.streams.names import FILES_STREAM, PARSER_GROUP
from ingestro.streams.publisher import publish
from tests.parse_outcome import CONTACTS
from tests.stack import Stack
from tests.test_hostile_uploads import HEADER, MEDIA, assert_nothing_failed, post, rows
from tests.test_properties import VALID_FILES, mutated

# ------------------------------------------------------------------ parse_file


def _breaking_after(count: int, error: Exception) -> Callable[..., Iterator[Any]]:
    """A stand-in for the CSV reader: the real one's first ``count`` rows, then ``error``."""
    real = readers.csv_rows

    def broken(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for index, row in enumerate(real(*args, **kwargs)):
            if index == count:
                raise error
            yield row

    return broken


def test_any_error_a_reader_raises_fails_the_parse_and_the_rows_before_it_stand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "csv_rows", _breaking_after(150, RecursionError("maximum recursion depth exceeded")))
    path = tmp_path / "contacts.csv"
    path.write_bytes(HEADER + rows(300))
    events = list(parse_file("job", path, "csv", CONTACTS, 100))
    verdict = events[-1]
    assert isinstance(verdict, ParseFailed)
    assert verdict.reason == (
        "the file cannot be read on after line 151: RecursionError: maximum recursion depth exceeded"
    )
    assert (verdict.rows_total, verdict.accepted_batches) == (150, 2)
    assert sum(len(event.rows) for event in events if isinstance(event, RowsAccepted)) == 150


def test_an_error_before_the_first_row_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "csv_rows", _breaking_after(0, ValueError("")))
    path = tmp_path / "contacts.csv"
    path.write_bytes(HEADER + rows(3))
    verdict = list(parse_file("job", path, "csv", CONTACTS, 100))[-1]
    assert isinstance(verdict, ParseFailed)
    assert verdict.reason == "the file cannot be read on before its first row: ValueError"


class _FailingDisk(io.RawIOBase):
    """A stored file whose disk fails after ``good`` bytes."""

    def __init__(self, content: bytes, good: int) -> None:
        self._content = io.BytesIO(content)
        self._good = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._content.tell() >= self._good:
            raise OSError(errno.EIO, "Input/output error")
        return self._content.readinto(buffer)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_a_storage_failure_is_not_the_files_it_leaves_the_parse_to_be_retried(compression: str | None) -> None:
    content = HEADER + rows(5000)
    stored = gzip.compress(content) if compression else content

    def source() -> io.BufferedReader:
        return io.BufferedReader(_FailingDisk(stored, len(stored) // 2), 4096)

    with pytest.raises(StorageFailed) as failed:
        list(parse_file("job", source, "csv", CONTACTS, 100, UploadOptions(compression=compression)))
    assert isinstance(failed.value.__cause__, OSError)

    def missing() -> io.BufferedReader:
        raise FileNotFoundError(errno.ENOENT, "No such file")

    with pytest.raises(StorageFailed):
        list(parse_file("job", missing, "csv", CONTACTS, 100))


# ------------------------------------------------------------------ the parser consumer


async def _received(stack: Stack, content: bytes, file_format: str, **options: Any) -> str:
    """Store ``content`` and append its FileReceived as the API would, with options it would not let through."""
    job_id = str(uuid.uuid4())
    storage = LocalStorage(Path(stack.settings.upload_dir))
    storage.root.mkdir(parents=True, exist_ok=True)
    storage.path(job_id).write_bytes(content)
    event = FileReceived(
        job_id=job_id,
        dataset="contacts",
        filename=f"broken.{file_format}",
        storage_key=job_id,
        format=file_format,
        bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        received_at=datetime.now(UTC).isoformat(),
        options=UploadOptions(**options),
    )
    await publish(stack.redis, event)
    while (await stack.client.get(f"/jobs/{job_id}")).status_code == 404:  # until the jobs projection has it
        await asyncio.sleep(0.05)
    return job_id


async def _assert_failed_on_first_delivery(stack: Stack, job_id: str, reason: str) -> dict[str, Any]:
    job = await stack.wait_for_job(job_id, timeout=30, statuses=("completed", "failed", "stalled"))
    assert job["status"] == "failed", job
    assert reason in job["error"], job
    await assert_nothing_failed(stack)  # no failure recorded, nothing dead-lettered, every consumer alive
    assert await stack.redis.xpending(FILES_STREAM, PARSER_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    return job


UTF16 = (HEADER + rows(3)).decode().encode("utf-16-le")


@pytest.mark.parametrize(
    ("file_format", "content", "options", "reason"),
    [
        ("csv", UTF16, {"encoding": "utf-16"}, "byte-order mark"),
        ("json", b'[{"email": "a@b.co"}]', {"encoding": "undefined"}, "cannot read a file as a stream"),
        ("ndjson", b'{"email": "a@b.co"}\n', {"encoding": "punycode"}, "cannot read a file as a stream"),
        ("csv", gzip.compress(HEADER + rows(3)), {"encoding": "idna", "compression": "gzip"}, "a stream"),
        ("csv", HEADER + rows(3), {"encoding": "rot13"}, "not a text encoding"),
        ("json", b"[]", {"encoding": "no-such-codec"}, "unknown text encoding"),
    ],
)
async def test_an_encoding_no_reading_can_use_fails_the_job_on_the_first_delivery(
    stack: Stack, file_format: str, content: bytes, options: dict[str, Any], reason: str
) -> None:
    stack.start_consumers()
    job_id = await _received(stack, content, file_format, **options)
    job = await _assert_failed_on_first_delivery(stack, job_id, reason)
    assert job["rows_total"] == 0


async def test_any_error_a_reader_raises_fails_the_job_on_the_first_delivery_with_the_rows_before_counted(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "csv_rows", _breaking_after(250, KeyError("a reader's bug")))
    stack.start_consumers()
    response = await post(stack, HEADER + rows(400))
    assert response.status_code == 202
    job = await _assert_failed_on_first_delivery(stack, response.json()["job_id"], "KeyError")
    assert (job["rows_total"], job["rows_accepted"], job["rows_inserted"]) == (250, 250, 250)
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == 250


async def test_a_file_in_utf16_with_undecodable_bytes_completes_with_the_row_rejected(stack: Stack) -> None:
    stack.start_consumers()
    content = (HEADER + rows(2)).decode().encode("utf-16-le") + b"\x00\xd8" + rows(1, 2).decode().encode("utf-16-le")
    response = await post(stack, content, params={"encoding": "utf-16-le"})
    job = await stack.wait_for_job(response.json()["job_id"])
    assert (job["status"], job["rows_accepted"], job["rows_rejected"]) == ("completed", 2, 1), job
    await assert_nothing_failed(stack)


async def test_a_storage_failure_is_retried_and_the_job_completes(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = LocalStorage.open
    failures = [OSError(errno.EIO, "Input/output error")]

    def flaky_open(self: LocalStorage, key: str) -> io.BufferedReader:
        if failures:
            raise failures.pop()
        return real_open(self, key)

    monkeypatch.setattr(LocalStorage, "open", flaky_open)
    stack.start_consumers()
    response = await post(stack, HEADER + rows(120))
    job = await stack.wait_for_job(response.json()["job_id"])
    assert (job["status"], job["rows_accepted"], job["error"]) == ("completed", 120, None), job
    assert failures == []


# ------------------------------------------------------------------ fuzzing the whole path

#: Encodings of every kind the rule lets in: one and several bytes per character, stateful, EBCDIC.
ENCODINGS = ["utf-8", "utf-16-le", "utf-32-be", "cp037", "shift_jis", "utf-7", "iso2022_jp", "latin-1", "gb18030"]
BOMS = [b"", b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff\x00", b"\xff\xfe\x00\x00"]


@st.composite
def broken_uploads(draw: st.DrawFn) -> tuple[str, bytes, str, bool]:
    """A file of each format, in some encoding, maybe behind a byte-order mark, maybe gzip, then mutated."""
    file_format = draw(st.sampled_from(list(VALID_FILES)))
    encoding = draw(st.sampled_from(ENCODINGS))
    text = VALID_FILES[file_format].decode("utf-8")
    encoded = draw(st.sampled_from(BOMS)) + text.encode(encoding, "replace")
    content = draw(st.one_of(mutated(encoded), st.binary(max_size=200)))
    gzipped = draw(st.booleans())
    if gzipped:
        content = draw(st.one_of(st.just(gzip.compress(content)), mutated(gzip.compress(content))))
    return file_format, content, encoding, gzipped


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=broken_uploads())
async def test_broken_files_of_every_reader_end_completed_or_failed_never_stalled(
    stack: Stack, case: tuple[str, bytes, str, bool]
) -> None:
    if not stack.consumers_alive():  # one stack for every example: each is its own job
        stack.start_consumers()
    file_format, content, encoding, gzipped = case
    assume(content)  # an empty upload is a 400
    headers = {"content-encoding": "gzip"} if gzipped else {}
    response = await post(stack, content, MEDIA[file_format], params={"encoding": encoding}, headers=headers)
    assert response.status_code == 202, response.text
    job = await stack.wait_for_job(response.json()["job_id"], timeout=30, statuses=("completed", "failed", "stalled"))
    assert job["status"] == "completed" or (job["status"] == "failed" and job["error"]), job
    await assert_nothing_failed(stack)
