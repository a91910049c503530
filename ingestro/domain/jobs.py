"""A job's lifecycle: its statuses, which are final, and which moves between them are allowed.

Defined once, here; the ``jobs`` projection is the only writer of a job's status and moves it
only along ``TRANSITIONS``. Everything that reads, filters, counts or shows statuses (the API,
the CLI, file retention, the metrics, reparse) takes them from this module. The values are the
ones the ``jobs.status`` CHECK constraint allows (db/001_jobs.sql, db/004_stalled_jobs.sql).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum


class JobStatus(str, Enum):
    """A job's status; each member is also its plain string, as stored and as the API shows it."""

    #: Uploaded; no consumer has reported on it yet.
    PENDING = "pending"
    #: Being parsed, or its batches are being applied.
    PROCESSING = "processing"
    #: An entry of the job was dead-lettered; it goes on once the entry is redriven and applied.
    STALLED = "stalled"
    #: Final: parsed to the end, every batch applied.
    COMPLETED = "completed"
    #: Final: the file could not be read to its end.
    FAILED = "failed"


#: Statuses a job never leaves.
FINAL: frozenset[JobStatus] = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})
#: Statuses a job may still leave, in lifecycle order.
UNFINISHED: tuple[JobStatus, ...] = tuple(status for status in JobStatus if status not in FINAL)
#: Every status, in lifecycle order (the final ones last).
STATUSES: tuple[JobStatus, ...] = tuple(JobStatus)

#: The statuses a job may move to from each status. A job only moves forward: ``pending`` may skip
#: ``processing`` (its events arrive in one group), a stall lasts until the job ends, and a final
#: status is never left.
TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.PROCESSING, JobStatus.STALLED, *FINAL}),
    JobStatus.PROCESSING: frozenset({JobStatus.STALLED, *FINAL}),
    JobStatus.STALLED: frozenset(FINAL),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


def is_final(status: str) -> bool:
    """Whether a job in ``status`` (a status's string) has ended."""
    return status in FINAL


def can_move(current: str | None, new: str) -> bool:
    """Whether a job in ``current`` (None: not known yet) may move to ``new``; unknown strings never move."""
    if new not in TRANSITIONS:
        return False
    if current is None:
        return True
    return new in TRANSITIONS.get(JobStatus(current), frozenset()) if current in TRANSITIONS else False


def sql_literals(statuses: Iterable[JobStatus]) -> str:
    """The statuses as SQL string literals, ``'pending', 'processing'``: constant conditions in SQL text
    (``status IN (...)``) name them through this, never spelled out."""
    return ", ".join(f"'{status.value}'" for status in statuses)
