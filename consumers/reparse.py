"""Reparse: run the parser over a job's stored file again and re-emit its events.

Parsing is deterministic: the same file, options, dataset version and batch size
give the same batches with the same ``seq`` numbers, under the same job id and the
same upload position (the FileReceived's stream id, which decides between rows of
one natural key). So the live projections find every re-emitted batch already
applied (``applied_batches``) and change nothing, only announcing the stored
outcomes again (BatchApplied), while the streams hold the job's events once more:
a ``replay`` can then rebuild from them what retention had trimmed.

The job's FileReceived comes from its stream entry while retained, else from its
``jobs`` row (``ingestro.database.job_sources``); it is not appended again (the live parser
would parse the file once more). A job whose stored file was deleted cannot be
reparsed; neither can one parsed with another ``INGESTRO_BATCH_SIZE`` (its batches
would be numbered differently), which is checked against the job's counts. A file the parser
group parsed in ranges (``consumers.ranges``) is reparsed in the same ranges, one after the other,
as long as ``INGESTRO_PARSE_RANGE_BYTES`` is the same.
"""

from __future__ import annotations

import math
from typing import Any

import asyncpg
import attrs
import redis.asyncio as aioredis

from consumers.parser import Parser
from ingestro.database.job_sources import JobSource, file_received_of, job_rows
from ingestro.datasets.registry import DatasetRegistry
from ingestro.domain import codec
from ingestro.domain.events import FileReceived
from ingestro.domain.jobs import FINAL, sql_literals
from ingestro.domain.limits import DEFAULT_LIMITS, Limits
from ingestro.formats.parsing import BATCH_CHARS
from ingestro.storage import Storage
from ingestro.streams.connections import text
from ingestro.streams.names import FILES_STREAM

_CHUNK = 500


class ReparseRefused(Exception):
    """A job cannot be reparsed (unknown, its file deleted, parsed with another batch size…)."""


@attrs.frozen
class Reparsed:
    job_id: str
    filename: str
    bytes: int


async def retained_sources(redis: aioredis.Redis, job_ids: set[str]) -> dict[str, JobSource]:
    """The FileReceived of each of ``job_ids`` still in the files stream, with its position."""
    found: dict[str, JobSource] = {}
    after = "-"
    while job_ids - set(found):
        chunk: Any = await redis.xrange(FILES_STREAM, after, "+", count=_CHUNK)
        if not chunk:
            break
        for entry_id, fields in chunk:
            try:
                event = codec.decode(fields)
            except codec.UnknownEvent:
                continue
            if isinstance(event, FileReceived) and event.job_id in job_ids:
                found[event.job_id] = JobSource(event, text(entry_id))
        after = f"({text(chunk[-1][0])}"
    return found


@attrs.define
class Reparser:
    """Reparses jobs with the parser's own code, as the ``parser`` consumer would."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    storage: Storage
    batch_size: int
    limits: Limits = DEFAULT_LIMITS
    #: The deployment's partitions per row stream (``INGESTRO_PARTITIONS``).
    partitions: int = attrs.field(kw_only=True)
    #: ``INGESTRO_PARSE_RANGE_BYTES``: a file the parser group parsed in ranges is reparsed in the same ranges.
    range_bytes: int = attrs.field(default=0, kw_only=True)

    async def plan(self, job_ids: list[str] | None) -> tuple[list[JobSource], dict[str, str]]:
        """What can be reparsed of ``job_ids`` (None: every job), and why each other job cannot."""
        rows = await job_rows(self.pool, job_ids)
        known = {row["job_id"] for row in rows}
        problems = {job_id: "no such job" for job_id in job_ids or () if job_id not in known}
        sources = {row["job_id"]: source for row in rows if (source := file_received_of(row)) is not None}
        unrecorded = {row["job_id"] for row in rows} - set(sources)
        if unrecorded:  # rows from before migration 006: the stream may still hold their FileReceived
            sources.update(await retained_sources(self.redis, unrecorded))
        deleted = {
            row["job_id"]: f"its file was deleted at {row['deleted_at']:%Y-%m-%d %H:%M} ({row['reason']})"
            for row in await self.pool.fetch(
                "SELECT job_id::text AS job_id, deleted_at, reason FROM deleted_files WHERE job_id = ANY($1::uuid[])",
                sorted(known),
            )
        }
        batches = {
            row["job_id"]: row
            for row in await self.pool.fetch(
                "SELECT job_id::text AS job_id, rows_accepted, rows_rejected, accepted_batches, rejected_batches"
                f" FROM jobs WHERE job_id = ANY($1::uuid[]) AND status IN ({sql_literals(FINAL)})",
                sorted(known),
            )
        }
        ready: list[JobSource] = []
        for row in rows:
            job_id = row["job_id"]
            source = sources.get(job_id)
            if job_id in deleted:
                problems[job_id] = deleted[job_id]
            elif source is None:
                problems[job_id] = (
                    "its FileReceived is no longer in the stream and its row does not record the file"
                    " (uploaded before migration 006)"
                )
            elif not await self.storage.exists(source.event.storage_key):
                problems[job_id] = "its stored file is gone"
            elif (why := self._other_batch_size(batches.get(job_id), source.event)) is not None:
                problems[job_id] = why
            else:
                ready.append(source)
        return ready, problems

    def _other_batch_size(self, counts: Any, received: FileReceived) -> str | None:
        """Why the job was evidently parsed with another batch size, or None.

        A file parsed in ranges has up to one more batch of each kind per range after the first, and a batch
        may end early at ``BATCH_CHARS`` of text: up to one more per ``BATCH_CHARS`` bytes of an uncompressed
        file (a character is at least a byte); a compressed file's text has no such bound, so for it only
        fewer batches than its rows make tell.
        """
        if counts is None or counts["accepted_batches"] is None:
            return None
        file_bytes = received.bytes
        ranges = file_bytes // self.range_bytes if self.range_bytes and file_bytes >= 2 * self.range_bytes else 0
        early: float = file_bytes // BATCH_CHARS if received.options.compression is None else math.inf
        for rows, batches in (
            (counts["rows_accepted"], counts["accepted_batches"]),
            (counts["rows_rejected"], counts["rejected_batches"]),
        ):
            fewest = -(-rows // self.batch_size)
            if not fewest <= batches <= fewest + ranges + early:
                return (
                    f"it was parsed with another batch size ({rows} rows made {batches} batches, not"
                    f" {fewest} of {self.batch_size}): set INGESTRO_BATCH_SIZE to the one it had"
                )
        return None

    async def reparse(self, source: JobSource) -> Reparsed:
        """Parse the job's file again and emit its events (ParseStarted, batches, verdict)."""
        parser = Parser(
            self.redis,
            self.storage,
            DatasetRegistry(self.pool),
            self.batch_size,
            self.limits,
            partitions=self.partitions,
            range_bytes=self.range_bytes,
            inline_ranges=True,
        )
        await parser.parse(source.event, source.position)
        return Reparsed(source.event.job_id, source.event.filename, source.event.bytes)
