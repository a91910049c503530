"""``GET /jobs/{id}/events``: a job's progress and status changes as Server-Sent Events, until it ends.

The job's row is read once, for the caller's right to see it (as ``GET /jobs/{id}``) and for the
state to start from: a ``progress`` and a ``status`` event. The rest comes from Redis, never from
polling the database: a blocking XREAD of the job-events stream (ParseCompleted and ParseFailed
tell ``rows_total``; each BatchApplied adds its rows, counted once per projection and batch as
the ``jobs`` projection counts them) and of the job-status stream (JobStatusChanged, published
by the ``jobs`` projection after each commit that changed a status). Both are read from the
job's start (its ``received_at``, less a margin for clocks that differ), so what happened before
the client connected is added up too; counts never go below those of the row read first. The
stream ends after the ``status`` event of ``completed`` or ``failed``, preceded by a ``progress``
with the job's final counts.

Each stream reads on a Redis connection of its own (a blocking read holds its connection; on
the shared pool, a hundred followers would starve every other request) and closes it when the
stream ends, the client goes away or Redis fails. An idle stream sends ``: keepalive`` every
``INGESTRO_EVENTS_HEARTBEAT_S``, which is also how long a read blocks at most, so a client gone away is
noticed within that time at the latest. The caller's API key is checked again once per heartbeat: a key
revoked while it follows a job ends its stream within a heartbeat (with a comment saying why).
``INGESTRO_MAX_EVENT_STREAMS`` caps the streams of one process: one more is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, cast

import attrs
import orjson
from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.auth import caller_of
from ingestro.api.context import AppContext
from ingestro.api.jobs import find_job
from ingestro.api.problems import Problem
from ingestro.api.responses import KEEPALIVE, EventStream, server_sent_event
from ingestro.database import keys
from ingestro.domain import codec
from ingestro.domain.jobs import can_move, is_final
from ingestro.streams.connections import redis_client, text
from ingestro.streams.names import DATA_GROUP, ERRORS_GROUP, JOB_EVENTS_STREAM, JOB_STATUS_STREAM
from ingestro.streams.outages import is_outage

log = logging.getLogger(__name__)

COUNTS = ("rows_total", "rows_accepted", "rows_rejected", "rows_inserted", "rows_updated", "rows_duplicate")
#: Events are read from this long before the job was received: the API's clock and Redis's may differ.
CLOCK_MARGIN_MS = 60_000
_READ_COUNT = 500
#: What XREAD answers (RESP2): per stream, its entries, each an id and its fields.
_Reply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None
_TYPES = frozenset({b"ParseCompleted", b"ParseFailed", b"BatchApplied", b"JobStatusChanged"})
#: The last words of a stream whose API key was revoked (a comment: clients ignore it, people read it).
REVOKED = b": the API key was revoked\n\n"


@attrs.define
class Progress:
    """A job's counts: at least those it started from, or a status change told, and what its batches add up to."""

    floor: dict[str, int | None]
    sums: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(COUNTS[1:], 0))
    rows_total: int | None = None
    _batches: set[tuple[str, int]] = attrs.field(factory=set)

    def view(self) -> dict[str, int | None]:
        shown: dict[str, int | None] = {"rows_total": _larger(self.floor.get("rows_total"), self.rows_total)}
        for name in COUNTS[1:]:
            shown[name] = _larger(self.floor.get(name), self.sums[name])
        return shown

    def add(self, event: dict[str, Any], type_name: str) -> None:
        if type_name in ("ParseCompleted", "ParseFailed"):
            self.rows_total = event["rows_total"]
        elif type_name == "BatchApplied" and (event["projection"], event["seq"]) not in self._batches:
            self._batches.add((event["projection"], event["seq"]))
            if event["projection"] == DATA_GROUP:
                self.sums["rows_accepted"] += event["rows"]
                self.sums["rows_inserted"] += event["inserted"]
                self.sums["rows_duplicate"] += event["duplicate"]
                self.sums["rows_updated"] += event.get("updated", 0)
            elif event["projection"] == ERRORS_GROUP:
                self.sums["rows_rejected"] += event["rows"]

    def told(self, change: dict[str, Any]) -> None:
        """Counts a status change carried: exact at its commit, so they are a floor."""
        self.floor = {name: _larger(self.floor.get(name), change.get(name)) for name in COUNTS}


def _larger(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _start_id(job: dict[str, Any]) -> str:
    """The stream id to read the job's events after: its receipt (or first known time), less the margin."""
    since = next((job[name] for name in ("received_at", "started_at", "updated_at") if job.get(name)), None)
    if not isinstance(since, datetime):
        return "0-0"
    return f"{max(0, int(since.timestamp() * 1000) - CLOCK_MARGIN_MS)}-0"


async def job_events(request: Request) -> Response:
    context: AppContext = request.app.state.context
    job = await find_job(request)  # 404 unless the caller may see it
    streams = context.event_streams
    if streams.open >= context.settings.max_event_streams:
        raise Problem(
            503,
            "Service Unavailable",
            f"this API process serves {context.settings.max_event_streams} event streams already; retry shortly",
            {"Retry-After": "5"},
        )
    streams.open += 1

    def closed() -> None:
        streams.open -= 1

    return EventStream(_events(context, job, caller_of(request).key_id), closed)


async def _key_revoked(context: AppContext, key_id: str | None) -> bool:
    """Whether the stream's API key was revoked (or cannot be checked now: PostgreSQL is unreachable)."""
    if key_id is None:  # insecure mode: no keys
        return False
    try:
        return not await keys.is_active(context.pool, key_id)
    except Exception as error:
        if not is_outage(error):
            raise
        return True


async def _events(context: AppContext, job: dict[str, Any], key_id: str | None) -> AsyncGenerator[bytes, None]:
    job_id, status = job["job_id"], job["status"]
    progress = Progress({name: job.get(name) for name in COUNTS})
    shown = progress.view()
    yield server_sent_event("progress", {"job_id": job_id, **shown})
    yield server_sent_event("status", {"job_id": job_id, "status": status, "error": job.get("error")})
    if is_final(status):
        return
    heartbeat_s = context.settings.events_heartbeat_s
    redis = redis_client(context.settings, socket_timeout=heartbeat_s + 10)
    positions = dict.fromkeys((JOB_EVENTS_STREAM, JOB_STATUS_STREAM), _start_id(job))
    last_sent = key_checked = time.monotonic()
    try:
        while True:
            # Never past the next check of the key (and at least 1 ms: 0 would block for ever).
            block_ms = max(1, int((key_checked + heartbeat_s - time.monotonic()) * 1000))
            try:
                reply = cast(_Reply, await redis.xread(positions, count=_READ_COUNT, block=block_ms))  # type: ignore[arg-type]
            except Exception as error:
                if not is_outage(error):
                    raise
                log.warning("redis unreachable; ending the job's event stream", extra={"job_id": job_id})
                return
            if time.monotonic() - key_checked >= heartbeat_s:
                if await _key_revoked(context, key_id):
                    log.info("API key revoked or unverifiable; ending its event stream", extra={"job_id": job_id})
                    yield REVOKED
                    return
                key_checked = time.monotonic()
            changes: list[dict[str, Any]] = []
            for stream, entries in reply or []:
                for entry_id, fields in entries:
                    positions[text(stream)] = text(entry_id)
                    type_name = fields.get(b"type")
                    if type_name not in _TYPES:
                        continue
                    event = orjson.loads(fields[b"data"])
                    if event.get("job_id") != job_id:
                        continue
                    if type_name == b"JobStatusChanged":
                        progress.told(event)
                        changes.append(event)
                    else:
                        progress.add(event, codec.event_type(fields))
            out: list[bytes] = []
            if progress.view() != shown:
                shown = progress.view()
                out.append(server_sent_event("progress", {"job_id": job_id, **shown}))
            for change in changes:
                # Statuses only move forward: a change told late (by a second applier) never moves one back.
                if can_move(status, change["status"]):
                    status = change["status"]
                    out.append(
                        server_sent_event("status", {"job_id": job_id, "status": status, "error": change["error"]})
                    )
                if is_final(status):
                    break
            if out:
                yield b"".join(out)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= heartbeat_s:
                yield KEEPALIVE
                last_sent = time.monotonic()
            if is_final(status):
                return
    finally:
        await redis.aclose()
