"""Upload storage on S3 or an S3-compatible server (MinIO, Ceph, ...): ``INGESTRO_STORAGE_URL=s3://bucket/prefix``.

Uploads stream in: the body is cut into parts of ``part_bytes`` sent as a multipart
upload while the next part is read, so an upload holds at most about two parts in
memory whatever its size; one that fits in a single part is a single PUT. A failed,
refused or cancelled upload is aborted, leaving nothing (and the bucket's lifecycle
rule aborts what a crashed process left). The SHA-256 and the size are computed on
the way through. Reading back is ``ingestro.storage.s3_reader``.

boto3 is synchronous: each request runs in a worker thread (``asyncio.to_thread``),
at most one in flight per upload. Credentials and region come from the standard AWS chain
(environment, ECS task role, instance profile); ``INGESTRO_S3_ENDPOINT_URL`` points
at another server than AWS.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import attrs
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ingestro.storage.interface import Stored, TooLarge, check_key
from ingestro.storage.s3_reader import is_missing, open_object

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedMultipartUploadTypeDef, CompletedPartTypeDef

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Size of each part of a multipart upload (S3 takes 5 MiB to 5 GiB, the last part smaller).
PART_BYTES = 8 * 1024 * 1024
MIN_PART_BYTES = 5 * 1024 * 1024


def s3_client(endpoint_url: str | None = None) -> S3Client:
    """A client with bounded timeouts and standard retries, for AWS or the server at ``endpoint_url``."""
    options: dict[str, Any] = {}
    if endpoint_url:
        # botocore's default CRC checksums on every request are not implemented by every S3-compatible
        # server: elsewhere than AWS, send and check them only where the API requires them.
        options = {"request_checksum_calculation": "when_required", "response_checksum_validation": "when_required"}
    config = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 5}, **options)
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


@attrs.frozen
class S3Storage:
    client: S3Client
    bucket: str
    #: Object keys are ``prefix/key`` (just ``key`` without a prefix).
    prefix: str = ""
    part_bytes: int = attrs.field(default=PART_BYTES)

    @part_bytes.validator
    def _check_part_bytes(self, _attribute: object, value: int) -> None:
        if value < MIN_PART_BYTES:
            raise ValueError(f"S3 parts are at least {MIN_PART_BYTES} bytes, not {value}")

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None, **options: Any) -> S3Storage:
        """The storage at ``s3://bucket[/prefix]``."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"not an S3 location: {url!r}; expected s3://bucket[/prefix]")
        return cls(s3_client(endpoint_url), parts.netloc, parts.path.strip("/"), **options)

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{check_key(key)}" if self.prefix else check_key(key)

    async def save(self, key: str, chunks: AsyncIterator[bytes], limit: int) -> Stored:
        """See ``ingestro.storage.interface.Storage.save``."""
        name = self.object_key(key)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload: _MultipartUpload | None = None
        finishing = False
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the upload is larger than the limit of {limit} bytes")
                digest.update(chunk)
                buffer += chunk
                while len(buffer) >= self.part_bytes:
                    if upload is None:
                        upload = await _MultipartUpload.start(self.client, self.bucket, name)
                    with memoryview(buffer) as view:
                        part = bytes(view[: self.part_bytes])
                    del buffer[: self.part_bytes]
                    await upload.send(part)
            finishing = True
            if upload is None:
                await _in_thread(self.client.put_object, Bucket=self.bucket, Key=name, Body=bytes(buffer))
            else:
                if buffer:
                    await upload.send(bytes(buffer))
                await upload.complete()
        except BaseException:
            if upload is not None:
                await upload.abort()
            if finishing:  # failed or cancelled while the object was being made: it may exist now
                await _quietly("delete an unfinished upload", self.client.delete_object, Bucket=self.bucket, Key=name)
            raise
        return Stored(key, size, digest.hexdigest())

    async def exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if is_missing(error):
                return False
            raise
        return True

    def open(self, key: str) -> io.BufferedReader:
        return open_object(self.client, self.bucket, self.object_key(key))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self.object_key(key))


@attrs.define
class _MultipartUpload:
    """One multipart upload: each part is sent while the caller reads the next one."""

    client: S3Client
    bucket: str
    key: str
    upload_id: str
    _parts: list[CompletedPartTypeDef] = attrs.field(factory=list)
    _sending: asyncio.Future[None] | None = None

    @classmethod
    async def start(cls, client: S3Client, bucket: str, key: str) -> _MultipartUpload:
        created = await _in_thread(client.create_multipart_upload, Bucket=bucket, Key=key)
        return cls(client, bucket, key, created["UploadId"])

    async def send(self, data: bytes) -> None:
        """Start sending ``data`` as the next part, once the part before it is stored."""
        await self._sent()
        self._sending = asyncio.ensure_future(asyncio.to_thread(self._upload_part, len(self._parts) + 1, data))

    async def complete(self) -> None:
        await self._sent()
        parts: CompletedMultipartUploadTypeDef = {"Parts": self._parts}
        await _in_thread(
            self.client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload=parts,
        )

    async def abort(self) -> None:
        """Abort the upload once no part is in flight (a part landing after the abort would stay)."""
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)
        await _quietly(
            "abort a multipart upload",
            self.client.abort_multipart_upload,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
        )

    async def _sent(self) -> None:
        if self._sending is not None:
            # Shielded: a cancelled caller leaves the part in flight to ``abort``, which waits for it.
            await asyncio.shield(self._sending)
            self._sending = None

    def _upload_part(self, number: int, data: bytes) -> None:
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})


async def _in_thread(call: Callable[..., _T], /, **kwargs: Any) -> _T:
    """``call(**kwargs)`` in a worker thread, waited for to its end even when the caller is cancelled,
    so that whatever cleans up after a cancellation knows the request is over."""
    request = asyncio.ensure_future(asyncio.to_thread(call, **kwargs))
    try:
        return await asyncio.shield(request)
    except asyncio.CancelledError:
        await asyncio.gather(request, return_exceptions=True)
        raise


async def _quietly(what: str, call: Callable[..., object], /, **kwargs: Any) -> None:
    """Clean up after a failed upload; a failure to do so is logged (the bucket's lifecycle rule is the backstop)."""
    try:
        await _in_thread(call, **kwargs)
    except Exception as error:
        log.warning(f"could not {what}", extra={"error": f"{type(error).__name__}: {error}"})
