"""A job's source: its FileReceived, rebuilt from the ``jobs`` row once the stream entry was trimmed.

The ``jobs`` projection records every attribute of a job's FileReceived in its row,
with the entry's stream id (``position``: the upload order), so that
``ingestro reparse`` can parse the file again and ``ingestro replay jobs`` can
apply the FileReceived again after retention trimmed the entry from Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import attrs
import cattrs

from ingestro.domain.events import FileReceived, UploadOptions

#: The columns ``file_received_of`` reads, from the ``jobs`` table.
SOURCE_COLUMNS = (
    "job_id::text AS job_id, status, dataset, filename, storage_key, format, bytes, sha256, received_at,"
    " options, tenant, uploaded_by, position, dataset_version, source, source_etag, source_last_modified"
)


@attrs.frozen
class JobSource:
    """A job's FileReceived and the stream position it had."""

    event: FileReceived
    position: str | None


def file_received_of(row: Mapping[str, Any]) -> JobSource | None:
    """The FileReceived a ``jobs`` row was recorded from, or None when the row does not hold one.

    Rows recorded before migration 006 (no storage key) and rows whose FileReceived was never
    applied (no dataset) hold none.
    """
    if row["storage_key"] is None or row["dataset"] is None or row["received_at"] is None:
        return None
    event = FileReceived(
        job_id=row["job_id"],
        dataset=row["dataset"],
        filename=row["filename"] or "",
        storage_key=row["storage_key"],
        format=row["format"],
        bytes=row["bytes"],
        sha256=row["sha256"],
        received_at=row["received_at"].isoformat(),
        options=cattrs.structure(row["options"] or {}, UploadOptions),
        tenant=row["tenant"],
        uploaded_by=row["uploaded_by"],
        dataset_version=row["dataset_version"],
        source=row["source"],
        etag=row["source_etag"],
        last_modified=row["source_last_modified"],
    )
    return JobSource(event, row["position"])


async def job_rows(connection: asyncpg.Connection | asyncpg.Pool, job_ids: list[str] | None) -> list[asyncpg.Record]:
    """The ``jobs`` rows of ``job_ids`` (None: every job), in upload order."""
    where = "" if job_ids is None else "WHERE job_id = ANY($1::uuid[])"
    args: list[Any] = [] if job_ids is None else [job_ids]
    return list(
        await connection.fetch(
            f"SELECT {SOURCE_COLUMNS} FROM jobs {where} ORDER BY received_at NULLS LAST, job_id", *args
        )
    )
