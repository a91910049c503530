"""Receiving an upload: store the file, announce FileReceived, seed its job's row, count it.

The application service behind ``POST /upload``, in plain values: a chunk iterator, who sends it
(``Uploader``), the dataset and the options. It returns what became of the upload (``Accepted``,
or ``Discarded`` for a repeated request whose file was only needed for its SHA-256) or raises a
domain error (``ingestro.storage.TooLarge``, ``EmptyUpload``); the HTTP handler (``ingestro.api.upload``) turns the
request into these values and the outcome into the answer, and keeps HTTP's concerns (media types,
multipart, Idempotency-Key) to itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import PurePosixPath

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro.datasets import Dataset
from ingestro.domain.events import FileReceived, UploadOptions
from ingestro.metrics import UPLOAD_BYTES, UPLOADS
from ingestro.storage import Storage
from ingestro.streams.publisher import publish
from projections.jobs import record_file_received

log = logging.getLogger(__name__)


class EmptyUpload(Exception):
    """The upload has no bytes (or an empty file field tells no format); nothing was kept."""


@attrs.frozen
class Uploader:
    """Who sends the upload: the job belongs to the tenant, and is recorded as uploaded by the API key."""

    tenant: str
    #: The API key's id; None in insecure mode.
    key_id: str | None


@attrs.frozen
class FileFacts:
    """What the file is, known once all its bytes arrived (a multipart body tells its name only then)."""

    filename: str | None
    #: csv, json or ndjson; None when nothing told it.
    format: str | None
    gzip: bool


@attrs.frozen
class Accepted:
    """A new job: its FileReceived, appended to the files stream at ``position``."""

    event: FileReceived
    position: str

    @property
    def sha256(self) -> str:
        return self.event.sha256


@attrs.frozen
class Discarded:
    """A repeated upload, received in full to be compared, then discarded: its content's SHA-256."""

    sha256: str


def display_name(filename: str | None) -> str:
    """The client's file name, for display only: its last path part, printable, at most 255 characters."""
    if not filename:
        return ""
    name = PurePosixPath(filename.replace("\\", "/")).name
    return "".join(ch for ch in name if ch.isprintable())[:255]


@attrs.frozen
class Uploads:
    """Receives uploads into ``storage`` and announces them on Redis; seeds job rows in PostgreSQL."""

    redis: aioredis.Redis
    pool: asyncpg.Pool
    storage: Storage
    max_upload_bytes: int

    async def receive(
        self,
        chunks: AsyncIterator[bytes],
        facts: Callable[[], FileFacts],
        uploader: Uploader,
        dataset: Dataset,
        options: UploadOptions,
        *,
        repeat: bool = False,
    ) -> Accepted | Discarded:
        """Store the file of ``chunks``, then announce its job (or, with ``repeat``, discard it).

        ``facts`` is asked once every chunk was read. Raises ``TooLarge`` past ``max_upload_bytes`` and
        ``EmptyUpload`` for an empty file (nothing kept either way); whatever ``chunks`` raises goes through.
        When announcing fails, the stored file is deleted and the error goes through; when only seeding the
        job's row fails, the job stands (the ``jobs`` projection makes the row from the event).
        """
        job_id = str(uuid.uuid4())
        stored = await self.storage.save(job_id, chunks, self.max_upload_bytes)
        file = facts()
        if stored.bytes == 0 or file.format is None:  # an empty file field tells no format either
            await self.storage.delete(stored.key)
            raise EmptyUpload("the upload is empty")
        if repeat:
            # A repeat: its file was needed to compare it with the first; the first's job stands.
            await self.storage.delete(stored.key)
            return Discarded(stored.sha256)

        event = FileReceived(
            job_id=job_id,
            dataset=dataset.name,
            filename=display_name(file.filename),
            storage_key=stored.key,
            format=file.format,
            bytes=stored.bytes,
            sha256=stored.sha256,
            received_at=datetime.now(UTC).isoformat(),
            options=attrs.evolve(options, compression="gzip" if file.gzip else None),
            tenant=uploader.tenant,
            uploaded_by=uploader.key_id,
            dataset_version=dataset.version,
        )
        try:
            position = await publish(self.redis, event)
        except Exception:
            await self.storage.delete(stored.key)
            raise
        try:
            async with self.pool.acquire() as connection:
                await record_file_received(connection, event, position)
        except Exception:
            # The event is durable: the jobs projection will create the row from it.
            log.warning("could not seed the job row; the jobs projection will", extra={"job_id": job_id}, exc_info=True)
        log.info("upload received", extra={"job_id": job_id, "bytes": stored.bytes, "format": file.format})
        UPLOADS.labels("accepted", file.format).inc()  # refusals are counted around the endpoint (api/metrics.py)
        UPLOAD_BYTES.labels(file.format).inc(stored.bytes)
        return Accepted(event, position)
