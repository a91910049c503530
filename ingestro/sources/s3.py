"""``s3://bucket/key`` sources, read from the operator's S3 endpoint (``INGESTRO_S3_ENDPOINT_URL``, or AWS).

The client controls the bucket and the key, never the endpoint; the endpoint's address is still checked
like an HTTP source's (an S3-compatible server on an internal network needs ``INGESTRO_IMPORT_ALLOW``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from ingestro.sources.addresses import AllowList, Refused, resolve
from ingestro.sources.fetch import CHUNK_BYTES, Fetched, FetchFailed, Retryable, _name
from ingestro.storage.s3 import s3_client


@contextlib.asynccontextmanager
async def open_s3(source: str, allow: AllowList, endpoint_url: str) -> AsyncIterator[Fetched]:
    parts = urlsplit(source)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if endpoint_url:
        endpoint = urlsplit(endpoint_url)
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        try:
            await resolve(endpoint.hostname or "", port, allow)
        except Refused as refused:
            raise FetchFailed(f"refused to fetch from the S3 endpoint: {refused}") from None
    client = s3_client(endpoint_url or None)
    try:
        answer: Any = await asyncio.to_thread(client.get_object, Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status >= 500 or status == 429:
            raise Retryable(f"S3 answered {status} {code}") from None
        raise FetchFailed(f"S3 refused s3://{bucket}/{key}: {code or status}") from None
    except BotoCoreError as error:
        raise Retryable(f"S3: {error}") from None
    body = answer["Body"]

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            try:
                chunk: bytes = await asyncio.to_thread(body.read, CHUNK_BYTES)
            except BotoCoreError as error:
                raise Retryable(f"S3 stopped sending: {error}") from None
            if not chunk:
                return
            yield chunk

    try:
        yield Fetched(
            chunks(), _name(key), answer.get("ContentType"), answer.get("ETag"), _http_date(answer.get("LastModified"))
        )
    finally:
        body.close()


def _http_date(value: Any) -> str | None:
    return value.strftime("%a, %d %b %Y %H:%M:%S GMT") if value is not None else None
