"""Every Redis stream, consumer group and Redis key name, defined once.

Streams carry events. Which streams each consumer group reads, each consumer says itself
(``Parser.streams``, ``Projection.streams``), gathered in ``ingestro.services.consumer_groups``.
Nothing else in the code base spells these strings.
"""

from __future__ import annotations

PREFIX = "ingestro"

#: FileReceived: one entry per accepted upload.
FILES_STREAM = f"{PREFIX}:files"
#: ImportRequested: one entry per pull import (``POST /imports``), read by the ``fetcher``.
IMPORTS_STREAM = f"{PREFIX}:imports"
#: RowsAccepted: one entry per batch of valid, normalized rows.
ACCEPTED_STREAM = f"{PREFIX}:rows-accepted"
#: RowsRejected: one entry per batch of rejected rows with their errors.
REJECTED_STREAM = f"{PREFIX}:rows-rejected"
#: The streams the parser writes row batches to, whose backlog ``INGESTRO_MAX_BACKLOG`` bounds.
ROW_STREAMS: tuple[str, ...] = (ACCEPTED_STREAM, REJECTED_STREAM)
#: Job lifecycle: ParseStarted, ParseCompleted, ParseFailed, BatchApplied.
JOB_EVENTS_STREAM = f"{PREFIX}:job-events"
#: Dead-letter stream: entries that failed ``max_deliveries`` times.
DLQ_STREAM = f"{PREFIX}:dlq"
#: JobStatusChanged, published by the ``jobs`` projection after its commit. Read by the ``notifications``
#: group (webhooks) and followed by plain XREAD (``GET /jobs/{id}/events``).
JOB_STATUS_STREAM = f"{PREFIX}:job-status"
#: Streams followed by plain XREAD besides any group: retention keeps their entries at least
#: ``FOLLOWED_FLOOR_S`` (see ``ingestro.streams.retention``), and trims them by age when no group reads them.
FOLLOWED_STREAMS: tuple[str, ...] = (JOB_STATUS_STREAM,)

PARSER_GROUP = "parser"
FETCHER_GROUP = "fetcher"
DATA_GROUP = "data"
ERRORS_GROUP = "errors"
JOBS_GROUP = "jobs"
NOTIFICATIONS_GROUP = "notifications"


def idempotency_key(scope: str, key: str) -> str:
    """String: what became of the upload sent with Idempotency-Key ``key`` by the caller ``scope``."""
    return f"{PREFIX}:idempotency:{scope}:{key}"


def rate_limit_key(caller: str) -> str:
    """Hash: the token bucket (tokens, last refill) of an API key's request rate."""
    return f"{PREFIX}:rate:{caller}"


def uploads_key(caller: str) -> str:
    """Sorted set: the uploads an API key is sending now, scored by when their lease expires."""
    return f"{PREFIX}:uploads:{caller}"


def failures_key(group: str) -> str:
    """Hash of entry id -> first/last failure record for entries a group failed to handle."""
    return f"{PREFIX}:failures:{group}"
