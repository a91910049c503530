"""Turn one stored file into the events that describe it: batches, then a verdict.

``parse_file`` is the parser's domain logic without Redis: it reads rows, checks
them against the dataset's rules and yields RowsAccepted / RowsRejected batches
followed by ParseCompleted or ParseFailed. Batch numbering depends only on the
file, so parsing the same file again yields the same events.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ingestro.datasets import Dataset
from ingestro.events import (
    AcceptedRow,
    FieldError,
    ParseCompleted,
    ParseFailed,
    RejectedRow,
    RowsAccepted,
    RowsRejected,
)
from ingestro.readers import RowReader, Unreadable
from ingestro.rules import check_row

ParseEvent = RowsAccepted | RowsRejected | ParseCompleted | ParseFailed


def parse_file(job_id: str, path: Path, file_format: str, dataset: Dataset, batch_size: int) -> Iterator[ParseEvent]:
    """Yield the events for the file at ``path``; the last one is ParseCompleted or ParseFailed."""
    reader = RowReader(path, file_format, dataset)
    accepted: list[AcceptedRow] = []
    rejected: list[RejectedRow] = []
    accepted_batches = rejected_batches = rows_total = rows_accepted = rows_rejected = 0
    try:
        for row in reader:
            rows_total += 1
            errors: list[FieldError]
            if row.error is not None or row.record is None:
                errors = [row.error] if row.error is not None else []
            else:
                checked = check_row(dataset, row.record)
                if checked.content_hash is not None:
                    accepted.append(AcceptedRow(row.line, checked.content_hash, checked.values))
                    rows_accepted += 1
                    if len(accepted) >= batch_size:
                        yield RowsAccepted(job_id, dataset.name, accepted_batches, accepted)
                        accepted_batches += 1
                        accepted = []
                    continue
                errors = checked.errors
            rejected.append(RejectedRow(row.line, errors, reader.as_written(row)))
            rows_rejected += 1
            if len(rejected) >= batch_size:
                yield RowsRejected(job_id, dataset.name, rejected_batches, rejected)
                rejected_batches += 1
                rejected = []
    except Unreadable as unreadable:
        failure: str | None = unreadable.reason
        failed_line = unreadable.line
    else:
        failure, failed_line = None, None
    # What was read before a failure still stands: flush it, then give the verdict.
    if accepted:
        yield RowsAccepted(job_id, dataset.name, accepted_batches, accepted)
        accepted_batches += 1
    if rejected:
        yield RowsRejected(job_id, dataset.name, rejected_batches, rejected)
        rejected_batches += 1
    if failure is not None:
        yield ParseFailed(job_id, failure, failed_line, rows_total, accepted_batches, rejected_batches)
        return
    yield ParseCompleted(
        job_id,
        rows_total=rows_total,
        rows_accepted=rows_accepted,
        rows_rejected=rows_rejected,
        accepted_batches=accepted_batches,
        rejected_batches=rejected_batches,
        unknown_columns=list(reader.unknown_columns),
    )
