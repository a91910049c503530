"""An S3 object read as a seekable binary stream, for readers written for local files.

One streaming GET serves the reads from the current position on; a seek (the
readers read a file again from the start) or a dropped connection opens a ranged
GET from where the reader is. Each GET after the first asks for the same ETag,
so an object replaced meanwhile fails the read instead of mixing two versions.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

#: How much the buffered reader on top takes from the response stream at a time.
BUFFER_BYTES = 1024 * 1024
#: Ranged GETs made to resume one read after the connection dropped, before giving up.
RESUMES = 3


class S3ObjectReader(io.RawIOBase):
    """Raw, seekable reads of one object. Opening it GETs the object, so a missing one raises at once."""

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._position = 0
        self._etag: str | None = None
        self._size = 0
        self._body: Any = None
        self._get()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = max(start + offset, 0)
        if position != self._position:
            self._drop_body()
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        resumes = 0
        while True:
            if self._body is None:
                self._get()
            try:
                count = int(self._body.readinto(buffer))
            except (HTTPClientError, IncompleteReadError):
                resumes += 1
                if resumes > RESUMES:
                    raise
                self._drop_body()  # the next GET resumes at the same position
                continue
            self._position += count
            return count

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _get(self) -> None:
        request: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key}
        if self._position:
            request["Range"] = f"bytes={self._position}-"
        if self._etag is not None:
            request["IfMatch"] = self._etag
        try:
            response = self._client.get_object(**request)
        except ClientError as error:
            if is_missing(error):
                raise FileNotFoundError(f"s3://{self._bucket}/{self._key} does not exist") from None
            raise
        if self._etag is None:
            self._etag = response["ETag"]
            self._size = response["ContentLength"]
        self._body = response["Body"]

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


def is_missing(error: ClientError) -> bool:
    """Whether S3 answered that there is no such object: a 404. (Without s3:ListBucket S3 answers 403 instead,
    which is not taken for absence.)"""
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


def open_object(client: S3Client, bucket: str, key: str) -> io.BufferedReader:
    """The object as a buffered reader (``peek`` included), as ``open(path, "rb")`` gives a file."""
    return io.BufferedReader(S3ObjectReader(client, bucket, key), BUFFER_BYTES)
