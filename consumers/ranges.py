"""One big file on many cores: the ``parser`` group parses the byte ranges of one file at once.

The parser that takes a FileReceived plans the file's ranges (``ingestro.formats.boundaries``: cut only
at proven record boundaries, else the file stays on that parser) and appends one ParseRange per range
to the files stream, which the whole ``parser`` group reads. Whichever parser takes a ParseRange reads
that range alone (a CSV range after the file's header) with the same ``parse_file`` as a whole file, so
each row gets the same hash, values, errors and raw text; then:

- its lines are shifted by the physical lines before the range (counted while planning): absolute;
- its batches are numbered from ``index * RANGE_SEQ_BOUND``: deterministic, and ordered across ranges,
  so the projections' ledger (``applied_batches``) and the jobs projection's count of applied batches
  work unchanged. A batch holds rows of one range only, so the batches are not cut where one parser
  cuts them: the same rows, lines and errors, in more (at most one more per range) batches;
- its outcome (counts, unknown columns, failure) is recorded in a Redis hash of the job
  (``parse_ranges_key``) in one MULTI with a read of the whole hash: the parser whose outcome completes
  it publishes the job's verdict, the sums of all ranges (ParseCompleted, or ParseFailed with the
  first failing range's reason). A redelivered range parses again (the same batches, found applied)
  and may tell the same verdict again, which changes nothing.

``ingestro reparse`` parses the ranges one after another in one process (``inline``), emitting the same
batches and verdict; the plan depends on the file and ``INGESTRO_PARSE_RANGE_BYTES``, as the batches
depend on ``INGESTRO_BATCH_SIZE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs
import orjson
import redis.asyncio as aioredis

from ingestro.datasets import Dataset
from ingestro.domain.events import (
    AcceptedRow,
    Event,
    FileReceived,
    ParseCompleted,
    ParseFailed,
    ParseRange,
    RowsAccepted,
    RowsRejected,
)
from ingestro.domain.limits import Limits
from ingestro.formats.boundaries import RANGE_SEQ_BOUND, RangePlan, range_source
from ingestro.formats.decoding import Source
from ingestro.formats.parsing import ParseEvent, parse_file
from ingestro.formats.source import MAX_UNKNOWN_COLUMNS
from ingestro.streams.connections import text
from ingestro.streams.names import parse_ranges_key

#: How long the outcomes of a job's ranges are kept: long after its last range was parsed.
_OUTCOMES_KEPT_S = 7 * 24 * 3600


@attrs.frozen
class RangeOutcome:
    """What parsing one range gave: its counts, the unknown columns met, why it failed (None: it did not)."""

    rows_total: int
    rows_accepted: int
    rows_rejected: int
    accepted_batches: int
    rejected_batches: int
    unknown_columns: list[str] = attrs.field(factory=list)
    failure: str | None = None
    failed_line: int | None = None


def work(received: FileReceived, position: str | None, plan: RangePlan) -> list[ParseRange]:
    """The ParseRange entries of ``plan``."""
    count = len(plan.ranges)
    return [
        ParseRange(received, position, r.index, count, r.start, r.end, plan.header_end, r.line_shift)
        for r in plan.ranges
    ]


def range_events(
    task: ParseRange, stored: Source, dataset: Dataset, batch_size: int, limits: Limits, outcomes: list[RangeOutcome]
) -> Iterator[RowsAccepted | RowsRejected]:
    """The batches of ``task``'s range, numbered and lined as the file's; its outcome is appended to ``outcomes``."""
    received = task.received
    source = range_source(stored, task.header_end, task.start, task.end)
    events = parse_file(
        received.job_id, source, received.format, dataset, batch_size, received.options, limits, task.position
    )
    return _renumbered(events, task.index, task.line_shift, outcomes)


def _renumbered(
    events: Iterable[ParseEvent], index: int, shift: int, outcomes: list[RangeOutcome]
) -> Iterator[RowsAccepted | RowsRejected]:
    base = index * RANGE_SEQ_BOUND
    for event in events:
        if isinstance(event, RowsAccepted):
            rows = (
                event.rows
                if not shift
                else [AcceptedRow(line + shift, hash_, values) for line, hash_, values in event.rows]
            )
            yield attrs.evolve(event, seq=base + event.seq, rows=rows)
        elif isinstance(event, RowsRejected):
            rejected = [attrs.evolve(row, line=row.line + shift) for row in event.rows]
            yield attrs.evolve(event, seq=base + event.seq, rows=rejected)
        elif isinstance(event, ParseCompleted):
            outcomes.append(
                RangeOutcome(
                    event.rows_total,
                    event.rows_accepted,
                    event.rows_rejected,
                    event.accepted_batches,
                    event.rejected_batches,
                    event.unknown_columns,
                )
            )
        else:
            # A CSV range fails at the header (a header line, not shifted) only as range 0 fails too.
            line = None if event.line is None else event.line + (shift if index else 0)
            outcomes.append(
                RangeOutcome(
                    event.rows_total, 0, 0, event.accepted_batches, event.rejected_batches, [], event.reason, line
                )
            )


def failed(reason: str) -> RangeOutcome:
    """The outcome of a range that could not be parsed at all."""
    return RangeOutcome(0, 0, 0, 0, 0, [], reason, None)


def verdict(job_id: str, outcomes: list[RangeOutcome]) -> Event:
    """The job's ParseCompleted or ParseFailed from the outcomes of all its ranges, in range order."""
    rows_total = sum(o.rows_total for o in outcomes)
    accepted_batches = sum(o.accepted_batches for o in outcomes)
    rejected_batches = sum(o.rejected_batches for o in outcomes)
    failure = next((o for o in outcomes if o.failure is not None), None)
    if failure is not None:
        assert failure.failure is not None
        return ParseFailed(job_id, failure.failure, failure.failed_line, rows_total, accepted_batches, rejected_batches)
    unknown = list(dict.fromkeys(name for o in outcomes for name in o.unknown_columns))[:MAX_UNKNOWN_COLUMNS]
    return ParseCompleted(
        job_id,
        rows_total=rows_total,
        rows_accepted=sum(o.rows_accepted for o in outcomes),
        rows_rejected=sum(o.rows_rejected for o in outcomes),
        accepted_batches=accepted_batches,
        rejected_batches=rejected_batches,
        unknown_columns=unknown,
    )


async def record(redis: aioredis.Redis, task: ParseRange, outcome: RangeOutcome) -> list[RangeOutcome] | None:
    """Record ``task``'s outcome; the outcomes of all the job's ranges, in order, once all are recorded."""
    key = parse_ranges_key(task.received.job_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, str(task.index), orjson.dumps(attrs.asdict(outcome)))
        pipe.expire(key, _OUTCOMES_KEPT_S)
        pipe.hgetall(key)
        *_, stored = await pipe.execute()
    by_index = {int(text(index)): orjson.loads(value) for index, value in stored.items()}
    if len(by_index) < task.ranges:
        return None
    return [RangeOutcome(**by_index[index]) for index in range(task.ranges)]
