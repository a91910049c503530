"""The ``jobs`` projection: job status and counts, from the job's events.

The only writer of the ``jobs`` table (the API seeds a new job's row through
``record_file_received``, the same statement this projection runs). Every event
is applied idempotently: lifecycle events set values, and BatchApplied counts are
added once per (job, projection, batch) thanks to ``job_batches``.

A job is ``completed`` once the parser finished and every accepted batch was
applied by ``data`` and every rejected batch by ``errors``; ``failed`` likewise
once the parser gave up (ParseFailed: ``error`` is set), so that a failed job's
counts are final too. ``completed`` and ``failed`` are final.

The projection also reads the dead-letter stream: a job one of whose entries was
dead-lettered is ``stalled``, with the reason, until the entry is redriven and
applied; then the completion check above finishes it as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import asyncpg
import attrs
import redis.asyncio as aioredis
from cattrs import unstructure

from ingestro.database.job_sources import file_received_of, job_rows
from ingestro.datasets.tables import quote_ident
from ingestro.domain import codec
from ingestro.domain.events import (
    BatchApplied,
    Event,
    FileReceived,
    ImportRequested,
    JobStatusChanged,
    ParseCompleted,
    ParseFailed,
    ParseStarted,
    RowsAccepted,
    RowsRejected,
)
from ingestro.domain.jobs import UNFINISHED, JobStatus, sql_literals
from ingestro.streams.dlq import DeadLetter
from ingestro.streams.names import DATA_GROUP, DLQ_STREAM, ERRORS_GROUP, FILES_STREAM, JOB_EVENTS_STREAM, JOBS_GROUP
from ingestro.streams.runtime import Entry
from projections import job_status
from projections.projection import announce

_ENSURE_ROW = "INSERT INTO jobs (job_id) VALUES ($1) ON CONFLICT DO NOTHING"
# The statuses, spelled once (ingestro.domain.jobs); every move below is one of its TRANSITIONS.
_PENDING, _PROCESSING, _STALLED, _COMPLETED, _FAILED = (
    sql_literals([status])
    for status in (JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.STALLED, JobStatus.COMPLETED, JobStatus.FAILED)
)
_OPEN = f"status IN ({sql_literals(UNFINISHED)})"
#: pending -> processing: any report on the job (a stalled job stays stalled until it ends).
_STARTED = f"status = CASE WHEN status = {_PENDING} THEN {_PROCESSING} ELSE status END"
_COMPLETE_IF_DONE = f"""
    UPDATE jobs SET status = CASE WHEN error IS NULL OR error = stall_reason THEN {_COMPLETED} ELSE {_FAILED} END,
           -- every batch is in, the dead-lettered one too: the stall's reason no longer holds
           error = CASE WHEN error = stall_reason THEN NULL ELSE error END, stall_reason = NULL,
           finished_at = now(), updated_at = now()
     WHERE job_id = $1 AND {_OPEN} AND parsed
       AND data_batches_applied = accepted_batches AND error_batches_applied = rejected_batches
"""
_STALL = f"""
    UPDATE jobs SET status = {_STALLED}, stall_reason = $2, updated_at = now(),
           -- why parsing failed stays: it decides that the job fails in the end
           error = CASE WHEN error IS NULL OR error = stall_reason THEN $2 ELSE error END
     WHERE job_id = $1 AND {_OPEN}
"""
#: FileReceived restored from ``jobs`` rows per transaction, in a replay.
_RESTORED_PER_TRANSACTION = 500
_COUNTED = "SELECT true FROM job_batches WHERE job_id = $1 AND projection = $2 AND seq = $3"


async def record_file_received(
    connection: asyncpg.Connection, event: FileReceived, position: str | None = None
) -> None:
    """Create or complete the job's row from its FileReceived; the status is left as it is.

    ``position`` is the FileReceived's stream entry id; with the storage key and the options it is
    what ``ingestro reparse`` needs once the entry was trimmed (a known position is never unset).
    """
    await connection.execute(
        """
        INSERT INTO jobs (job_id, dataset, filename, format, bytes, sha256, received_at, tenant, uploaded_by,
                          storage_key, options, position, dataset_version, source, source_etag, source_last_modified)
        VALUES ($1, $2, $3, $4, $5, $6, $7::text::timestamptz, $8, $9, $10, $11, $12, $13, $14, $15, $16)
        ON CONFLICT (job_id) DO UPDATE
           SET dataset = EXCLUDED.dataset, filename = EXCLUDED.filename, format = EXCLUDED.format,
               bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256, received_at = EXCLUDED.received_at,
               tenant = EXCLUDED.tenant, uploaded_by = EXCLUDED.uploaded_by,
               storage_key = EXCLUDED.storage_key, options = EXCLUDED.options,
               position = coalesce(EXCLUDED.position, jobs.position), dataset_version = EXCLUDED.dataset_version,
               source = EXCLUDED.source, source_etag = EXCLUDED.source_etag,
               source_last_modified = EXCLUDED.source_last_modified
        """,
        event.job_id,
        event.dataset,
        event.filename,
        event.format,
        event.bytes,
        event.sha256,
        event.received_at,
        event.tenant,
        event.uploaded_by,
        event.storage_key,
        unstructure(event.options),
        position,
        event.dataset_version,
        event.source,
        event.etag,
        event.last_modified,
    )


async def record_import_requested(connection: asyncpg.Connection, event: ImportRequested) -> None:
    """Seed a pull import's row from its request, so that the job is listed (and can fail) before its file arrives.

    Written by the API when it accepts the import; the job's FileReceived completes the row.
    """
    await connection.execute(
        """
        INSERT INTO jobs (job_id, dataset, filename, format, received_at, tenant, uploaded_by, options,
                          dataset_version, source)
        VALUES ($1, $2, $3, $4, $5::text::timestamptz, $6, $7, $8, $9, $10)
        ON CONFLICT (job_id) DO NOTHING
        """,
        event.job_id,
        event.dataset,
        event.source,
        event.format,
        event.requested_at,
        event.tenant,
        event.requested_by,
        unstructure(event.options),
        event.dataset_version,
        event.source,
    )


async def _parse_started(connection: asyncpg.Connection, event: ParseStarted) -> None:
    await connection.execute(
        f"UPDATE jobs SET {_STARTED}, started_at = coalesce(started_at, now()), updated_at = now() WHERE job_id = $1",
        event.job_id,
    )


async def _parse_completed(connection: asyncpg.Connection, event: ParseCompleted) -> None:
    await connection.execute(
        f"""
        UPDATE jobs SET parsed = true, rows_total = $2, accepted_batches = $3, rejected_batches = $4,
               unknown_columns = $5, parsed_at = coalesce(parsed_at, now()), updated_at = now(), {_STARTED}
         WHERE job_id = $1
        """,
        event.job_id,
        event.rows_total,
        event.accepted_batches,
        event.rejected_batches,
        event.unknown_columns,
    )


async def _parse_failed(connection: asyncpg.Connection, event: ParseFailed) -> None:
    await connection.execute(
        f"""
        UPDATE jobs SET {_STARTED}, parsed = true,
               error = $2, error_line = $3, rows_total = $4, accepted_batches = $5, rejected_batches = $6,
               parsed_at = coalesce(parsed_at, now()), updated_at = now()
         WHERE job_id = $1
        """,
        event.job_id,
        event.reason,
        event.line,
        event.rows_total,
        event.accepted_batches,
        event.rejected_batches,
    )


_COUNT_BATCHES = """
    INSERT INTO job_batches (job_id, projection, seq)
    SELECT $1, projection, seq FROM unnest($2::text[], $3::integer[]) AS b(projection, seq) ORDER BY 2, 3
    ON CONFLICT DO NOTHING RETURNING projection, seq
"""
_ADD_COUNTS = f"""
    UPDATE jobs SET rows_accepted = rows_accepted + $2, rows_inserted = rows_inserted + $3,
           rows_duplicate = rows_duplicate + $4, rows_updated = rows_updated + $5,
           data_batches_applied = data_batches_applied + $6,
           rows_rejected = rows_rejected + $7, error_batches_applied = error_batches_applied + $8,
           {_STARTED}, updated_at = now()
     WHERE job_id = $1
"""


async def _batches_applied(connection: asyncpg.Connection, job_id: str, events: list[BatchApplied]) -> None:
    """Add the counts of one job's batches, each the first time it is told (a repeat adds nothing).

    Two statements for all the batches of the group: a batch of 500 rows used to take two of its own.
    """
    for event in events:
        if event.projection not in (DATA_GROUP, ERRORS_GROUP):
            raise ValueError(f"BatchApplied from unknown projection {event.projection!r}")
    counted = await connection.fetch(
        _COUNT_BATCHES, job_id, [event.projection for event in events], [event.seq for event in events]
    )
    first_time = {(projection, seq) for projection, seq in counted}
    # accepted, inserted, duplicate, updated, data batches, rejected, error batches
    sums = [0] * 7
    for event in events:
        if (event.projection, event.seq) not in first_time:
            continue
        first_time.discard((event.projection, event.seq))  # told twice in the group: counted once
        if event.projection == DATA_GROUP:
            for column, value in enumerate((event.rows, event.inserted, event.duplicate, event.updated, 1)):
                sums[column] += value
        else:
            sums[5] += event.rows
            sums[6] += 1
    if sums[4] or sums[6]:  # some batch was told for the first time
        await connection.execute(_ADD_COUNTS, job_id, *sums)


@attrs.define
class JobsProjection:
    """Applies job events and dead letters to ``jobs`` and ``job_batches``; announces status changes."""

    name: ClassVar[str] = JOBS_GROUP
    # The DLQ too, so a job whose entry was dead-lettered shows it (``stalled``). A replay reads them in this order,
    # so a job finished since its entry was dead-lettered stays finished.
    streams: ClassVar[tuple[str, ...]] = (FILES_STREAM, JOB_EVENTS_STREAM, DLQ_STREAM)
    announces: ClassVar[tuple[type[Event], ...]] = (JobStatusChanged,)
    shared_tables: ClassVar[tuple[str, ...]] = ()
    facts: ClassVar[str] = "job facts (rows, counted batches)"

    pool: asyncpg.Pool
    #: Where status changes are announced (JobStatusChanged, after each commit); None: not announced.
    redis: aioredis.Redis | None = None

    @classmethod
    def in_shadow(cls, pool: asyncpg.Pool, schema: str) -> JobsProjection:
        """See ``Projection.in_shadow``: its tables are named unqualified, so ``pool``'s search_path finds them."""
        return cls(pool, None)

    async def __call__(self, entry: Entry) -> None:
        await self.handle_group([entry])

    async def handle_group(self, entries: list[Entry]) -> None:
        """Apply the entries' job events in one transaction (dead letters one by one), announcing after each commit."""
        for transaction in _transactions(entries):
            await announce(self.redis, await self._apply_entries(transaction))

    async def apply_entries(self, entries: list[Entry]) -> list[JobStatusChanged]:
        """Apply the entries as ``handle_group`` does; return the status changes, announcing nothing."""
        return [change for transaction in _transactions(entries) for change in await self._apply_entries(transaction)]

    async def _apply_entries(self, entries: list[Entry]) -> list[JobStatusChanged]:
        """One transaction's entries: a dead letter alone, or job events."""
        if len(entries) == 1 and entries[0].stream == DLQ_STREAM:
            return await self._stall(entries[0].id, DeadLetter.from_fields(entries[0].fields))
        return await self._apply_all(
            [codec.decode(entry.fields) for entry in entries], [entry.id or None for entry in entries]
        )

    async def stall(self, dlq_id: str, letter: DeadLetter) -> None:
        """Mark the job of a dead-lettered event ``stalled``, saying why, unless it finished meanwhile."""
        await announce(self.redis, await self._stall(dlq_id, letter))

    async def _stall(self, dlq_id: str, letter: DeadLetter) -> list[JobStatusChanged]:
        event = letter.event()
        if event is None:
            return []  # not an event of ours; or a dead letter itself, failed here and dead-lettered again
        async with self.pool.acquire() as connection, connection.transaction():
            if isinstance(event, (RowsAccepted, RowsRejected)) and await connection.fetchval(
                _COUNTED, event.job_id, letter.group, event.seq
            ):
                return []  # redriven and applied before this dead letter was read
            before = await job_status.statuses(connection, [event.job_id])
            await connection.execute(_ENSURE_ROW, event.job_id)
            reason = f"{letter.describe()} (redrive it with `ingestro dlq redrive {dlq_id}`)"
            await connection.execute(_STALL, event.job_id, reason)
            return await job_status.changes_since(connection, before)

    async def apply(self, event: Event) -> None:
        """Apply one job event; events of other kinds are ignored."""
        await self.apply_all([event])

    async def apply_all(self, events: list[Event], positions: Sequence[str | None] = ()) -> None:
        """Apply job events in one transaction, in job order (so concurrent appliers lock rows alike); announce.

        ``positions``: the events' stream entry ids, where known (a FileReceived's is recorded).
        """
        await announce(self.redis, await self._apply_all(events, positions))

    async def _apply_all(self, events: list[Event], positions: Sequence[str | None] = ()) -> list[JobStatusChanged]:
        if not events:
            return []
        known = [*positions, *[None] * (len(events) - len(positions))]
        by_job: dict[str, list[tuple[Event, str | None]]] = {}
        for event, position in zip(events, known, strict=True):
            by_job.setdefault(event.job_id, []).append((event, position))
        async with self.pool.acquire() as connection, connection.transaction():
            before = await job_status.statuses(connection, sorted(by_job))
            for job_id in sorted(by_job):
                await connection.execute(_ENSURE_ROW, job_id)
                applied: list[BatchApplied] = []
                for event, position in by_job[job_id]:
                    if isinstance(event, BatchApplied):
                        applied.append(event)
                    else:
                        await _apply(connection, event, position)
                if applied:
                    await _batches_applied(connection, job_id, applied)
                # Once per job, after all its events: whether it is done depends only on where they leave it.
                await connection.execute(_COMPLETE_IF_DONE, job_id)
            # Announced by the caller after the commit: never a status rolled back.
            return await job_status.changes_since(connection, before)

    async def tables(self) -> tuple[str, ...]:
        return ("jobs", "job_batches")

    async def restore_trimmed(self, stream: str, live: asyncpg.Connection) -> None:
        """After the files stream: apply the FileReceived of every live job whose entry retention trimmed, from its
        ``jobs`` row, which records all of it (``ingestro.database.job_sources``)."""
        if stream != FILES_STREAM:
            return
        received = {row[0] for row in await self.pool.fetch("SELECT job_id::text FROM jobs WHERE dataset IS NOT NULL")}
        missing = [
            source
            for row in await job_rows(live, None)
            if row["job_id"] not in received and (source := file_received_of(row)) is not None
        ]
        for start in range(0, len(missing), _RESTORED_PER_TRANSACTION):
            chunk = missing[start : start + _RESTORED_PER_TRANSACTION]
            await self._apply_all([source.event for source in chunk], [source.position for source in chunk])

    async def lost(self, live: asyncpg.Connection, schema: str) -> dict[str, int]:
        """Counted batches, jobs, and jobs' recorded upload or parse the shadows lack, per job."""
        shadow = quote_ident(schema)
        rows = await live.fetch(
            f"""
            SELECT job_id, sum(missing)::bigint AS missing FROM (
                SELECT l.job_id::text AS job_id, count(*) AS missing FROM public.job_batches l
                 WHERE NOT EXISTS (SELECT 1 FROM {shadow}.job_batches s
                                    WHERE s.job_id = l.job_id AND s.projection = l.projection AND s.seq = l.seq)
                 GROUP BY l.job_id
                UNION ALL
                SELECT l.job_id::text, 1 FROM public.jobs l LEFT JOIN {shadow}.jobs s USING (job_id)
                 WHERE s.job_id IS NULL OR (l.dataset IS NOT NULL AND s.dataset IS NULL)
                    OR (l.parsed AND NOT s.parsed)
            ) facts GROUP BY job_id ORDER BY job_id
            """
        )
        return {row["job_id"]: int(row["missing"]) for row in rows}


def _transactions(entries: list[Entry]) -> list[list[Entry]]:
    """How the entries are applied: each dead letter alone, first; then every job event in one transaction."""
    letters = [[entry] for entry in entries if entry.stream == DLQ_STREAM]
    events = [entry for entry in entries if entry.stream != DLQ_STREAM]
    return [*letters, *([events] if events else [])]


async def _apply(connection: asyncpg.Connection, event: Event, position: str | None = None) -> None:
    """Apply a lifecycle event to its job's row (which exists); other events are ignored."""
    if isinstance(event, FileReceived):
        await record_file_received(connection, event, position)
    elif isinstance(event, ParseStarted):
        await _parse_started(connection, event)
    elif isinstance(event, ParseCompleted):
        await _parse_completed(connection, event)
    elif isinstance(event, ParseFailed):
        await _parse_failed(connection, event)
