"""Turn one stored file into the events that describe it: batches, then a verdict.

``parse_file`` is the parser's domain logic without Redis: it reads rows, checks
them against the dataset's rules and yields RowsAccepted / RowsRejected batches
followed by ParseCompleted or ParseFailed. Batch numbering depends only on the
file and its upload options, so parsing the same file again yields the same events.

An upload's error threshold (``max_errors``, ``max_error_rate``) stops the parse
with ParseFailed once passed; the batches before it stand.

**Failed, not retried.** Whatever goes wrong while reading the file is the file's (or its
options', or its dataset's) and would go wrong again on every reading of it: an
``Unreadable`` file, an encoding that cannot read it, and any other exception a reader
or a rule raises end the parse with ParseFailed and the reason, the rows read before it
flushed and counted. Only ``StorageFailed`` (the storage could not give the bytes) and
``MemoryError`` propagate, for the consumer to retry.
"""

from __future__ import annotations

from collections.abc import Iterator

from ingestro.datasets import Dataset
from ingestro.datasets.rules import compile_dataset
from ingestro.domain.events import (
    AcceptedRow,
    FieldError,
    ParseCompleted,
    ParseFailed,
    RejectedRow,
    RowsAccepted,
    RowsRejected,
    UploadOptions,
)
from ingestro.domain.limits import DEFAULT_LIMITS, Limits
from ingestro.formats.csv_rows import CsvRow
from ingestro.formats.decoding import Source, StorageFailed
from ingestro.formats.readers import RowReader, Unreadable
from ingestro.formats.source import clean_text

ParseEvent = RowsAccepted | RowsRejected | ParseCompleted | ParseFailed
#: ``max_error_rate`` is judged once this many rows were read (and at the end of a shorter file):
#: one bad row among the first few is no rate.
RATE_MIN_ROWS = 100


#: Characters of the file's text behind one batch at most (see ``parse_file``): far above a batch of typical rows
#: (2,000 rows of 100 characters are 200,000), so it ends only batches of large rows.
BATCH_CHARS = 16 * 1024 * 1024


def threshold_passed(options: UploadOptions, rejected: int, total: int, *, at_end: bool) -> str | None:
    """Why ``rejected`` rejected rows out of ``total`` read pass the upload's error threshold, or None."""
    if options.max_errors is not None and rejected > options.max_errors:
        return f"{rejected} rows rejected, more than max_errors={options.max_errors}"
    rate = options.max_error_rate
    if rate is not None and (at_end or total >= RATE_MIN_ROWS) and total and rejected > rate * total:
        return f"{rejected} of {total} rows rejected, more than max_error_rate={rate:g}"
    return None


def unexpected_failure(error: Exception, last_line: int) -> str:
    """The reason a job fails for ``error``, met while reading its file after line ``last_line`` (0: none)."""
    where = f"after line {last_line}" if last_line else "before its first row"
    detail = clean_text(str(error), 500)
    return f"the file cannot be read on {where}: {type(error).__name__}" + (f": {detail}" if detail else "")


def parse_file(
    job_id: str,
    path: Source,
    file_format: str,
    dataset: Dataset,
    batch_size: int,
    options: UploadOptions = UploadOptions(),
    limits: Limits = DEFAULT_LIMITS,
    position: str | None = None,
    batch_chars: int = BATCH_CHARS,
) -> Iterator[ParseEvent]:
    """Yield the events for the file at ``path``; the last one is ParseCompleted or ParseFailed.

    ``position``: the stream id of the job's FileReceived, carried by each RowsAccepted as its upload order.
    A batch ends at ``batch_size`` rows, or once ``batch_chars`` characters of the file's text (CSV, NDJSON,
    JSON) were read since it began: batches of large rows stay small in memory and in Redis. Both are
    deterministic, so a file parsed again gives the same batches.
    """
    reader = RowReader(path, file_format, dataset, options, limits)
    failure: str | None = None
    failed_line: int | None = None
    accepted: list[AcceptedRow] = []
    rejected: list[RejectedRow] = []
    accepted_batches = rejected_batches = rows_total = rows_accepted = rows_rejected = 0
    accepted_from = rejected_from = 0  # reader.chars_read when each batch began
    last_line = 0
    try:
        check = compile_dataset(dataset).check
        for row in reader:
            last_line = row.line
            rows_total += 1
            errors: list[FieldError]
            if isinstance(row, CsvRow):  # checked by position, from its cells: no record is made
                values, content_hash, errors = row.columns.check(row.raw)
            elif row.error is None and row.record is not None:
                values, content_hash, errors = check(row.record)
            else:
                content_hash, errors = None, [row.error] if row.error is not None else []
            if content_hash is not None:
                accepted.append(AcceptedRow(row.line, content_hash, values))
                rows_accepted += 1
                if len(accepted) >= batch_size or reader.chars_read - accepted_from >= batch_chars:
                    yield RowsAccepted(job_id, dataset.name, accepted_batches, accepted, dataset.version, position)
                    accepted_batches += 1
                    accepted = []
                    accepted_from = reader.chars_read
                continue
            rejected.append(RejectedRow(row.line, errors, reader.as_written(row)))
            rows_rejected += 1
            if len(rejected) >= batch_size or reader.chars_read - rejected_from >= batch_chars:
                yield RowsRejected(job_id, dataset.name, rejected_batches, rejected)
                rejected_batches += 1
                rejected = []
                rejected_from = reader.chars_read
            if (passed := threshold_passed(options, rows_rejected, rows_total, at_end=False)) is not None:
                failure, failed_line = f"{passed} (stopped at line {row.line})", row.line
                break
        else:
            if (passed := threshold_passed(options, rows_rejected, rows_total, at_end=True)) is not None:
                failure = passed
    except Unreadable as unreadable:
        failure, failed_line = unreadable.reason, unreadable.line
    except (StorageFailed, MemoryError):
        raise  # not the file's fault: may go well next time
    except Exception as error:  # anything else is the file's, and would happen again on every reading
        failure = unexpected_failure(error, last_line)
    # What was read before a failure still stands: flush it, then give the verdict.
    if accepted:
        yield RowsAccepted(job_id, dataset.name, accepted_batches, accepted, dataset.version, position)
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
