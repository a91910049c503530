"""A job's lifecycle (ingestro.domain.jobs) as a specification: the statuses, which are final, the moves allowed;
and the ``jobs`` table and projection hold to it."""

from __future__ import annotations

import itertools

from ingestro.domain import codec
from ingestro.domain.events import BatchApplied, ParseCompleted, ParseStarted, RowsAccepted
from ingestro.domain.jobs import FINAL, STATUSES, TRANSITIONS, UNFINISHED, JobStatus, can_move, is_final, sql_literals
from ingestro.streams.dlq import DeadLetter
from ingestro.streams.names import ACCEPTED_STREAM
from projections.jobs import JobsProjection
from tests.stack import Stack

JOB = "00000000-0000-4000-8000-0000000011fe"


def test_the_statuses_in_lifecycle_order_are_plain_strings() -> None:
    assert [status.value for status in STATUSES] == ["pending", "processing", "stalled", "completed", "failed"]
    assert all(isinstance(status, str) and status == status.value for status in STATUSES)
    assert JobStatus("stalled") is JobStatus.STALLED


def test_completed_and_failed_are_final_and_never_left() -> None:
    assert frozenset({JobStatus.COMPLETED, JobStatus.FAILED}) == FINAL
    assert UNFINISHED == (JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.STALLED)
    assert is_final("completed") and is_final("failed") and not is_final("stalled") and not is_final("bogus")
    for final in FINAL:
        assert TRANSITIONS[final] == frozenset()
        assert not any(can_move(final, status) for status in STATUSES)


def test_a_job_only_moves_forward() -> None:
    allowed = {(current.value, new.value) for current in STATUSES for new in STATUSES if can_move(current, new)}
    assert allowed == {
        ("pending", "processing"),
        ("pending", "stalled"),
        ("pending", "completed"),  # every event of the job applied in one group
        ("pending", "failed"),
        ("processing", "stalled"),
        ("processing", "completed"),
        ("processing", "failed"),
        ("stalled", "completed"),  # the dead letter was redriven and applied
        ("stalled", "failed"),
    }
    assert not any(can_move(status, status) for status in STATUSES)
    assert set(TRANSITIONS) == set(STATUSES)


def test_unknown_strings_never_move_and_an_unknown_job_may_take_any_status() -> None:
    assert not can_move("pending", "archived") and not can_move("archived", "completed")
    assert all(can_move(None, status) for status in STATUSES)


def test_sql_literals_name_the_statuses_as_stored() -> None:
    assert sql_literals(UNFINISHED) == "'pending', 'processing', 'stalled'"


async def test_the_jobs_table_allows_exactly_the_lifecycle_statuses(stack: Stack) -> None:
    check = await stack.pool.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'jobs_status_check'"
    )
    assert all(f"'{status.value}'" in check for status in STATUSES), check
    assert check.count("'") == 2 * len(STATUSES), check
    assert (
        await stack.pool.fetchval(
            "SELECT column_default FROM information_schema.columns WHERE table_name = 'jobs' AND column_name = 'status'"
        )
        == "'pending'::text"
    )


async def test_the_jobs_projection_moves_a_job_only_along_the_transitions(stack: Stack) -> None:
    jobs = JobsProjection(stack.pool)
    poisoned = RowsAccepted(JOB, "contacts", 0, [])
    letter = DeadLetter(
        ACCEPTED_STREAM,
        "1-0",
        "data",
        "host-0",
        5,
        "Boom",
        "boom",
        "",
        "",
        {name.encode(): value for name, value in codec.encode(poisoned).items()},
    )
    seen: list[str | None] = [None]

    async def status_now() -> None:
        seen.append(await stack.pool.fetchval("SELECT status FROM jobs WHERE job_id = $1", JOB))

    await jobs.apply(ParseStarted(JOB))
    await status_now()
    await jobs.stall("9-0", letter)
    await status_now()
    await jobs.apply(ParseCompleted(JOB, 1, 1, 0, 1, 0, []))
    await status_now()
    await jobs.apply(BatchApplied(JOB, "data", 0, 1, 1, 0))  # the redriven batch
    await status_now()
    await jobs.stall("9-1", letter)  # read late: a finished job stays finished
    await status_now()

    assert seen == [None, "processing", "stalled", "stalled", "completed", "completed"]
    for current, new in itertools.pairwise(seen):
        assert new == current or can_move(current, str(new)), (current, new)
