"""Upload storage, held to one contract on both backends: a local directory and S3.

The S3 backend runs against a real S3-protocol server on loopback (moto's standalone
server, as a process of its own), so multipart uploads, aborts, ranged reads and
ETags go over HTTP exactly as they would to AWS or MinIO.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ResponseStreamingError

from ingestro.config import Settings
from ingestro.devtools.samples import write_sample
from ingestro.devtools.servers import HOST, free_port
from ingestro.storage import LocalStorage, Storage, TooLarge, storage_for
from ingestro.storage.s3 import MIN_PART_BYTES, S3Storage, s3_client
from ingestro.storage.s3_reader import S3ObjectReader
from tests.stack import StackFactory

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PART = MIN_PART_BYTES
#: The fake credentials the S3 server accepts; only ever used on loopback.
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "ingestro-test",
    "AWS_SECRET_ACCESS_KEY": "ingestro-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server on loopback, with the test credentials in this process's environment."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out, pytest.MonkeyPatch.context() as environment:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            environment.delenv(name, raising=False)
        for name, value in AWS_ENVIRONMENT.items():
            environment.setenv(name, value)
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            endpoint = f"http://{HOST}:{port}"
            _wait_until_up(endpoint, server, log)
            yield endpoint
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_up(endpoint: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the S3 server did not start:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def client(s3_endpoint: str) -> S3Client:
    return s3_client(s3_endpoint)


@pytest.fixture
def s3(client: S3Client) -> S3Storage:
    """S3 storage on a new, empty bucket, with the smallest parts S3 allows (a few MiB make a multipart upload)."""
    bucket = f"ingestro-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3Storage(client, bucket, "uploads", part_bytes=PART)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.server)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "uploads")
    s3: S3Storage = request.getfixturevalue("s3")
    return s3


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def cut_off(data: bytes, error: Exception) -> AsyncIterator[bytes]:
    """``data``, then the connection drops."""
    async for chunk in chunks_of(data):
        yield chunk
    raise error


def stored_keys(s3: S3Storage) -> list[str]:
    listing = s3.client.list_objects_v2(Bucket=s3.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def unfinished_uploads(s3: S3Storage) -> list[str]:
    listing = s3.client.list_multipart_uploads(Bucket=s3.bucket)
    return [upload["Key"] for upload in listing.get("Uploads", [])]


def nothing_kept(storage: Storage) -> bool:
    """No object, no unfinished multipart upload, no partial file: not a byte of the upload stays."""
    if isinstance(storage, S3Storage):
        return stored_keys(storage) == [] and unfinished_uploads(storage) == []
    assert isinstance(storage, LocalStorage)
    return not storage.root.exists() or not any(storage.root.iterdir())


# ------------------------------------------------------------------ the contract


async def test_a_saved_upload_reads_back_whole_with_its_size_and_sha256(storage: Storage) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)

    stored = await storage.save("job-1", chunks_of(data), limit=len(data))

    assert (stored.key, stored.bytes, stored.sha256) == ("job-1", len(data), hashlib.sha256(data).hexdigest())
    assert await storage.exists("job-1")
    with storage.open("job-1") as reader:
        assert reader.read() == data


async def test_an_empty_upload_is_stored_empty(storage: Storage) -> None:
    stored = await storage.save("job-1", chunks_of(b""), limit=10)

    assert stored.bytes == 0 and stored.sha256 == hashlib.sha256(b"").hexdigest()
    with storage.open("job-1") as reader:
        assert reader.read() == b""


async def test_a_reader_peeks_reads_in_pieces_and_reads_again_from_the_start(storage: Storage) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)  # more than the S3 reader's buffer
    await storage.save("job-1", chunks_of(data), limit=len(data))

    with storage.open("job-1") as reader:
        assert reader.peek(4)[:4] == data[:4]
        pieces = iter(lambda: reader.read(100_003), b"")
        assert b"".join(pieces) == data
        assert reader.seek(0) == 0
        assert reader.read(10) == data[:10] and reader.tell() == 10
        reader.seek(len(data) - 3)
        assert reader.read() == data[-3:]


async def test_an_upload_past_the_limit_is_refused_and_nothing_is_kept(storage: Storage) -> None:
    data = os.urandom(PART + 1000)

    with pytest.raises(TooLarge):
        await storage.save("job-1", chunks_of(data), limit=PART + 999)

    assert nothing_kept(storage)


async def test_an_upload_cut_off_midway_leaves_nothing(storage: Storage) -> None:
    with pytest.raises(ConnectionResetError):
        await storage.save("job-1", cut_off(os.urandom(2 * PART + 1), ConnectionResetError()), limit=10 * PART)

    assert nothing_kept(storage)


async def test_a_cancelled_upload_leaves_nothing(storage: Storage) -> None:
    halfway = asyncio.Event()

    async def slow_client() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(os.urandom(2 * PART)):
            yield chunk
        halfway.set()
        await asyncio.Event().wait()  # the rest never comes

    saving = asyncio.ensure_future(storage.save("job-1", slow_client(), limit=10 * PART))
    await halfway.wait()
    saving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await saving

    assert nothing_kept(storage)


async def test_a_deleted_upload_is_gone_and_deleting_it_again_is_harmless(storage: Storage) -> None:
    await storage.save("job-1", chunks_of(b"a,b\n"), limit=10)

    await storage.delete("job-1")
    await storage.delete("job-1")

    assert not await storage.exists("job-1")
    with pytest.raises(FileNotFoundError):
        storage.open("job-1")


@pytest.mark.parametrize("key", ["", "../etc", "a/b", "a\\b", ".hidden"])
async def test_keys_are_server_made_names_never_paths(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="not a storage key"):
        await storage.save(key, chunks_of(b"x"), limit=10)
    with pytest.raises(ValueError, match="not a storage key"):
        storage.open(key)


# ------------------------------------------------------------------ S3 specifics


async def test_a_large_upload_streams_to_s3_in_parts_while_it_is_still_arriving(s3: S3Storage) -> None:
    data = os.urandom(2 * PART + 123_457)
    seen_parts: list[int] = []

    async def arriving() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(data[: 2 * PART + 1]):
            yield chunk
        # Two parts read: the first is stored already, before the body has ended.
        [upload] = s3.client.list_multipart_uploads(Bucket=s3.bucket)["Uploads"]
        listing = s3.client.list_parts(Bucket=s3.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        seen_parts.extend(part["PartNumber"] for part in listing.get("Parts", []))
        async for chunk in chunks_of(data[2 * PART + 1 :]):
            yield chunk

    stored = await s3.save("job-1", arriving(), limit=len(data))

    assert 1 in seen_parts
    head = s3.client.head_object(Bucket=s3.bucket, Key="uploads/job-1")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.bytes == len(data)
    with s3.open("job-1") as reader:
        assert reader.read() == data
    assert unfinished_uploads(s3) == []


async def test_a_small_upload_is_one_object_under_the_prefix(s3: S3Storage) -> None:
    await s3.save("job-1", chunks_of(b"email\n"), limit=100)

    assert stored_keys(s3) == ["uploads/job-1"]
    assert unfinished_uploads(s3) == []


class _DroppingBody:
    """A response body whose connection drops once, after ``after`` bytes."""

    def __init__(self, body: Any, after: int) -> None:
        self.body, self.left = body, after

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            raise ResponseStreamingError(error="connection reset by peer")
        count = int(self.body.readinto(memoryview(buffer)[: self.left]))
        self.left -= count
        return count

    def close(self) -> None:
        self.body.close()


class _FlakyClient:
    """An S3 client whose first GET's connection drops midway; it records the ranges asked for."""

    def __init__(self, client: Any, after: int) -> None:
        self.client, self.after, self.ranges = client, after, []

    def get_object(self, **request: Any) -> Any:
        self.ranges.append(request.get("Range"))
        response = self.client.get_object(**request)
        if len(self.ranges) == 1:
            response["Body"] = _DroppingBody(response["Body"], self.after)
        return response


async def test_a_read_whose_connection_drops_resumes_where_it_stopped(s3: S3Storage) -> None:
    data = os.urandom(300_000)
    await s3.save("job-1", chunks_of(data), limit=len(data))
    client = _FlakyClient(s3.client, after=100_000)

    reader = S3ObjectReader(client, s3.bucket, "uploads/job-1")  # type: ignore[arg-type]  # a wrapped client
    assert reader.read() == data
    assert client.ranges == [None, "bytes=100000-"]


def test_a_missing_object_is_a_missing_file(s3: S3Storage) -> None:
    with pytest.raises(FileNotFoundError, match="uploads/job-1"):
        s3.open("job-1")


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("url", "bucket_name", "prefix"),
    [("s3://uploads", "uploads", ""), ("s3://uploads/", "uploads", ""), ("s3://b/in/coming/", "b", "in/coming")],
)
def test_an_s3_url_names_a_bucket_and_a_prefix(url: str, bucket_name: str, prefix: str) -> None:
    storage = S3Storage.from_url(url)
    assert (storage.bucket, storage.prefix) == (bucket_name, prefix)


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "https://bucket/x", "s3://bucket/x?versionId=1"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="s3://bucket"):
        S3Storage.from_url(url)


def test_the_storage_url_picks_the_backend(tmp_path: Path) -> None:
    def storage(**environment: str) -> Storage:
        return storage_for(Settings.from_env({"INGESTRO_UPLOAD_DIR": str(tmp_path), **environment}))

    assert storage() == LocalStorage(tmp_path)
    s3 = storage(INGESTRO_STORAGE_URL="s3://uploads/ingestro", INGESTRO_S3_ENDPOINT_URL="http://127.0.0.1:9000")
    assert isinstance(s3, S3Storage) and (s3.bucket, s3.prefix) == ("uploads", "ingestro")
    assert s3.client.meta.endpoint_url == "http://127.0.0.1:9000"
    with pytest.raises(ValueError, match="INGESTRO_STORAGE_URL"):
        storage(INGESTRO_STORAGE_URL="gs://uploads")


def test_parts_smaller_than_s3_allows_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        S3Storage.from_url("s3://uploads", part_bytes=MIN_PART_BYTES - 1)


# ------------------------------------------------------------------ end to end


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_a_file_is_ingested_end_to_end_through_s3(
    stack_factory: StackFactory, s3: S3Storage, s3_endpoint: str, encoding: str
) -> None:
    content = io.BytesIO()
    expected = write_sample(content, "csv", rows=2000, seed=11)
    body = gzip.compress(content.getvalue()) if encoding == "gzip" else content.getvalue()
    settings = {"storage_url": f"s3://{s3.bucket}/incoming", "s3_endpoint_url": s3_endpoint}
    async for stack in stack_factory.open(**settings):
        stack.start_consumers()
        headers = {"content-type": "text/csv", "content-encoding": encoding}
        response = await stack.client.post("/upload", content=body, headers=headers)
        assert response.status_code == 202, response.text
        job = await stack.wait_for_job(response.json()["job_id"])

        assert job["status"] == "completed", job
        counts = (job["rows_total"], job["rows_accepted"], job["rows_rejected"])
        assert counts == (expected.rows, expected.valid, expected.invalid)
        assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
        assert stored_keys(s3) == [f"incoming/{job['job_id']}"]
        with S3Storage(s3.client, s3.bucket, "incoming").open(job["job_id"]) as stored:
            assert stored.read() == body, "stored as uploaded"
        assert not stack.settings.upload_dir.exists(), "nothing went to the local directory"
