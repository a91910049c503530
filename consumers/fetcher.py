"""The ``fetcher`` consumer: pull an import's file from its source into storage, then emit its FileReceived.

It handles ImportRequested (``POST /imports``, ``ingestro import``). The source is read through
``ingestro.sources`` (only http(s) and s3, every address checked after DNS resolution and on every redirect,
then connected to as checked) and streamed into the upload storage under the job's id with the upload size
limit, so the rest of the pipeline is the same as for an upload. Network errors, timeouts, 5xx and 429 are
tried again with exponential backoff, ``attempts`` times in all; a refusal, a 4xx, a file over the limit, an
empty file, or the last failed attempt fail the job with the reason (ParseFailed), and the entry is acked:
as for the parser, an error in the entry's data is an outcome, not a failure to dead-letter.

A redelivery (the fetcher died after storing) fetches the file again and emits a second FileReceived for the
same job; the parser emits the same batches for it and the projections apply them once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import ClassVar

import attrs
import redis.asyncio as aioredis

from ingestro.domain import codec
from ingestro.domain.events import FileReceived, ImportRequested, ParseFailed
from ingestro.sources import AllowList, FetchFailed, Retryable, open_source
from ingestro.storage import Storage, TooLarge
from ingestro.streams.names import FETCHER_GROUP, IMPORTS_STREAM
from ingestro.streams.publisher import publish
from ingestro.streams.runtime import Entry

log = logging.getLogger(__name__)


@attrs.define
class Fetcher:
    """Handles ImportRequested."""

    #: Its consumer group, and the streams that group reads.
    name: ClassVar[str] = FETCHER_GROUP
    streams: ClassVar[tuple[str, ...]] = (IMPORTS_STREAM,)

    redis: aioredis.Redis
    storage: Storage
    allow: AllowList
    max_bytes: int
    s3_endpoint_url: str = ""
    #: Attempts at a source that fails with a network error, a timeout, a 5xx or a 429.
    attempts: int = 4
    #: The wait before the second attempt; it doubles before each next one.
    backoff_s: float = 1.0

    async def __call__(self, entry: Entry) -> None:
        event = codec.decode(entry.fields)
        if isinstance(event, ImportRequested):
            await self.fetch(event)

    async def fetch(self, event: ImportRequested) -> None:
        """Store the file of ``event``'s source and emit FileReceived, or fail the job with the reason."""
        reason = "no attempt was made"
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                received = await self._fetch_once(event)
            except Retryable as error:
                reason = f"{error} (after {attempt + 1} attempts)"
                log.info("import attempt failed", extra={"job_id": event.job_id, "attempt": attempt + 1})
                continue
            except (FetchFailed, TooLarge) as error:
                reason = str(error)
                break
            await publish(self.redis, received)
            log.info("import fetched", extra={"job_id": event.job_id, "bytes": received.bytes})
            return
        log.info("import failed", extra={"job_id": event.job_id, "reason": reason})
        await publish(self.redis, ParseFailed(event.job_id, f"import failed: {reason}", None, 0, 0, 0))

    async def _fetch_once(self, event: ImportRequested) -> FileReceived:
        async with open_source(event.source, self.allow, self.s3_endpoint_url) as fetched:
            try:
                stored = await self.storage.save(event.job_id, fetched.chunks, self.max_bytes)
            except TooLarge:
                raise TooLarge(f"the source is larger than the limit of {self.max_bytes} bytes") from None
        if stored.bytes == 0:
            await self.storage.delete(stored.key)
            raise FetchFailed("the source is empty")
        if event.format is None:  # the API refuses an import whose format nothing tells; kept for old entries
            await self.storage.delete(stored.key)
            raise FetchFailed("the source's format is unknown; pass format")
        return FileReceived(
            job_id=event.job_id,
            dataset=event.dataset,
            filename=fetched.name or event.source,
            storage_key=stored.key,
            format=event.format,
            bytes=stored.bytes,
            sha256=stored.sha256,
            received_at=datetime.now(UTC).isoformat(),
            options=event.options,
            tenant=event.tenant,
            uploaded_by=event.requested_by,
            dataset_version=event.dataset_version,
            source=event.source,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
        )
