"""Replay on real Redis and PostgreSQL: rebuilt tables equal the live ones, live ingestion goes on, code changes
reach old rows, and a replay that would lose trimmed events is refused."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import asyncpg
import pytest

from ingestro.cli import replay as replay_command
from ingestro.devtools.samples import Expected, write_sample
from ingestro.domain import codec
from ingestro.domain.events import AcceptedRow, RowsAccepted
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.dlq import DeadLetter
from ingestro.streams.names import ACCEPTED_STREAM, DLQ_STREAM, partition_key
from ingestro.streams.retention import trim_streams
from projections import batches
from projections.data import DataProjection
from projections.registry import PROJECTIONS
from projections.replay import ReplayRefused
from tests.stack import REDIS_MODES, Stack, row_stream_length

#: Columns that are rebuild time by definition ("when was this applied"), per table.
REBUILD_TIME = {
    "contacts": {"created_at", "updated_at"},
    "validation_errors": {"created_at"},
    # Which batch of a file first meets a key (inserted, or duplicate/updated) depends on the order its
    # partitions were applied in, live and in the replay; the table's rows and the jobs' totals do not.
    "applied_batches": {"applied_at", "inserted", "duplicate", "updated"},
    "jobs": {"started_at", "parsed_at", "finished_at", "updated_at"},
    "job_batches": set(),
}


def sample(rows: int, seed: int, **rates: float) -> tuple[bytes, Expected]:
    out = io.BytesIO()
    expected = write_sample(out, "csv", rows, seed=seed, **rates)
    return out.getvalue(), expected


def distinct_rows(rows: int, tag: str) -> bytes:
    """A CSV whose every row is new: no other file of the test has it."""
    lines = [f"{tag}-{n}@example.com,First{n},Last{n},2024-01-{n % 28 + 1:02d}" for n in range(rows)]
    return ("email,first_name,last_name,signup_date\n" + "\n".join(lines) + "\n").encode()


async def checksum(pool: asyncpg.Pool, table: str) -> tuple[int, str]:
    """Row count and md5 of every row's text (columns in table order, rebuild-time ones left out), sorted."""
    columns = [
        row["column_name"]
        for row in await pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1"
            " ORDER BY ordinal_position",
            table,
        )
        if row["column_name"] not in REBUILD_TIME[table]
    ]
    row_text = f"ROW({', '.join(columns)})::text"
    result = await pool.fetchrow(
        f"SELECT count(*) AS n, md5(coalesce(string_agg({row_text}, E'\\n' ORDER BY {row_text}), '')) AS sum"
        f" FROM {table}"
    )
    return int(result["n"]), str(result["sum"])


async def checksums(pool: asyncpg.Pool) -> dict[str, tuple[int, str]]:
    return {table: await checksum(pool, table) for table in REBUILD_TIME}


async def schema_names(pool: asyncpg.Pool) -> set[tuple[str, str]]:
    """(table, name) of every index and constraint of the projections' tables."""
    tables = list(REBUILD_TIME)
    indexes = await pool.fetch("SELECT tablename, indexname FROM pg_indexes WHERE tablename = ANY($1)", tables)
    constraints = await pool.fetch(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE conrelid::regclass::text = ANY($1)", tables
    )
    return {(row[0], row[1]) for row in [*indexes, *constraints]}


async def ingest_all(stack: Stack, *contents: bytes) -> list[dict[str, Any]]:
    """Ingest each file after the previous one completed (so every run applies the same order)."""
    return [await stack.ingest(content) for content in contents]


@pytest.mark.parametrize("redis_mode", REDIS_MODES)  # on a Redis Cluster too
@pytest.mark.slow
async def test_rebuilt_tables_equal_the_live_ones_row_for_row(stack: Stack) -> None:
    first, _ = sample(350, seed=1, duplicate_rate=0)
    second, _ = sample(250, seed=2, duplicate_rate=0)
    broken = b"email,first_name,last_name,signup_date\na@x.io,A,B,2024-01-02\nb@x.io,B,C,not a date\n"
    stack.start_consumers()
    jobs = await ingest_all(stack, first, second, first, broken)  # the third: every row a duplicate of the first's
    assert [job["status"] for job in jobs] == ["completed"] * 4
    # A job stalled by a dead letter: the jobs replay reads the dead-letter stream too.
    stalled = RowsAccepted(str(uuid.uuid4()), "contacts", 0, [AcceptedRow(2, "0" * 64, {"email": "s@x.io"})])
    fields = {name.encode(): value for name, value in codec.encode(stalled).items()}
    letter = DeadLetter(
        partition_key(ACCEPTED_STREAM, 0, stack.settings.partitions),
        "1-0",
        "data",
        "c",
        5,
        "ValueError",
        "boom",
        "t0",
        "t1",
        fields,
    )
    await stack.redis.xadd(DLQ_STREAM, letter.to_fields())  # type: ignore[arg-type]
    await stack.wait_idle()
    assert (await stack.client.get(f"/jobs/{stalled.job_id}")).json()["status"] == "stalled"
    before = await checksums(stack.pool)
    assert all(count > 0 for count, _ in before.values()), before
    schema_before = await schema_names(stack.pool)
    assert {
        ("jobs", "jobs_newest_first"),
        ("jobs", "jobs_status_check"),
        ("contacts", "contacts_pkey"),
    } <= schema_before

    for projection in ("data", "errors", "jobs"):
        outcome = await stack.replay(projection)
        assert outcome.lost == {}

    assert await checksums(stack.pool) == before
    # The swap kept the index and constraint names the migrations gave (a later migration may refer to them).
    assert await schema_names(stack.pool) == schema_before
    assert not await stack.pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'ingestro_replay%'")


async def test_progress_shows_entries_done_of_the_total_and_the_rate(stack: Stack) -> None:
    content, _ = sample(300, seed=3)
    stack.start_consumers()
    await stack.ingest(content)
    await stack.wait_idle()
    out = io.StringIO()

    await stack.replay("data", out=out)

    accepted = await row_stream_length(stack.redis, ACCEPTED_STREAM, stack.settings.partitions)
    assert f"replay data: ingestro:rows-accepted {accepted:,} of {accepted:,} entries" in out.getvalue()
    assert "entries/s" in out.getvalue()


class SlowDataProjection(DataProjection):
    """The live code, slowed so that uploads certainly go on while the replay builds and swaps."""

    async def apply_all(self, events: list[RowsAccepted]) -> list[batches.Outcome]:
        await asyncio.sleep(0.05)
        return await super().apply_all(events)


@pytest.mark.parametrize("redis_mode", REDIS_MODES)  # on a Redis Cluster too
@pytest.mark.slow
async def test_replay_while_uploads_continue_loses_nothing(stack: Stack) -> None:
    stack.start_consumers()
    await ingest_all(stack, *(distinct_rows(300, f"before{n}") for n in range(3)))
    await stack.wait_idle()
    replaying = asyncio.Event()

    async def keep_uploading() -> list[str]:
        uploaded: list[str] = []
        while replaying.is_set() and len(uploaded) < 40:
            uploaded.append((await stack.upload(distinct_rows(100, f"during{len(uploaded)}")))["job_id"])
            await asyncio.sleep(0.05)
        return uploaded

    replaying.set()
    uploads = asyncio.create_task(keep_uploading())
    slow = {**PROJECTIONS, "data": SlowDataProjection}
    for projection in ("data", "errors", "jobs"):
        await stack.replay(projection, classes=slow)
    replaying.clear()
    during = await uploads
    assert len(during) >= 3, "too few uploads happened while the replays ran"

    for job_id in during:
        job = await stack.wait_for_job(job_id)
        assert job["status"] == "completed" and job["rows_inserted"] == 100, job
    await stack.wait_idle()
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == 3 * 300 + 100 * len(during)
    assert await stack.pool.fetchval("SELECT sum(rows_inserted) FROM jobs") == 3 * 300 + 100 * len(during)
    assert await stack.pool.fetchval("SELECT count(*) FROM applied_batches WHERE projection = 'data'") == 3 * 3 + len(
        during
    )


class DomainDataProjection(DataProjection):
    """New projection code: contacts get an ``email_domain`` column, computed from the events' rows."""

    async def apply_all(self, events: list[RowsAccepted]) -> list[batches.Outcome]:
        outcomes = await super().apply_all(events)
        hashes = [row.content_hash for event in events for row in event.rows]
        await self.pool.execute(
            "UPDATE contacts SET email_domain = split_part(email, '@', 2) WHERE content_hash = ANY($1)", hashes
        )
        return outcomes


async def test_replay_after_the_projection_code_changed_gives_old_rows_the_new_column(stack: Stack) -> None:
    content, expected = sample(300, seed=4)
    stack.start_consumers()
    await stack.ingest(content)
    await stack.wait_idle()
    await stack.stop_consumers()
    await stack.pool.execute("ALTER TABLE contacts ADD COLUMN email_domain text")  # the new code's migration
    try:
        assert (
            await stack.pool.fetchval("SELECT count(*) FROM contacts WHERE email_domain IS NULL") == expected.distinct
        )

        await stack.replay("data", classes={**PROJECTIONS, "data": DomainDataProjection})

        assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct
        assert await stack.pool.fetchval("SELECT count(*) FROM contacts WHERE email_domain IS NULL") == 0
        assert (
            await stack.pool.fetchval("SELECT count(*) FROM contacts WHERE email_domain <> split_part(email, '@', 2)")
            == 0
        )
    finally:
        await stack.pool.execute("ALTER TABLE contacts DROP COLUMN IF EXISTS email_domain")


async def test_replay_refuses_when_retention_trimmed_events_the_live_tables_hold(stack: Stack) -> None:
    content, expected = sample(300, seed=5)
    stack.start_consumers()
    job = await stack.ingest(content)
    await stack.wait_idle()
    await trim_streams(stack.redis, group_stream_keys(stack.settings.partitions), retention_s=0)
    assert await stack.redis.xlen("ingestro:rows-accepted") == 0

    with pytest.raises(ReplayRefused) as refused:
        await stack.replay("data")

    message = str(refused.value)
    assert job["job_id"] in message and "ingestro reparse" in message and "--allow-loss" in message
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == expected.distinct  # nothing swapped
    with pytest.raises(ReplayRefused, match=job["job_id"]):
        await stack.replay("jobs")
    assert (await stack.client.get(f"/jobs/{job['job_id']}")).json()["status"] == "completed"

    outcome = await stack.replay("data", allow_loss=True)
    assert outcome.lost == {job["job_id"]: -(-expected.valid // 100)}
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts") == 0


async def test_the_command_replays_every_projection_or_exits_1_saying_why(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.start_consumers()
    await stack.ingest(distinct_rows(150, "cmd"))
    await stack.wait_idle()
    out = io.StringIO()

    assert await replay_command.run(stack.settings, "all", allow_loss=False, out=out) == 0

    assert [line.split(":")[0] for line in out.getvalue().splitlines()] == [
        "replayed data",
        "replayed errors",
        "replayed jobs",
    ]
    assert "replay data: ingestro:rows-accepted 2 of 2 entries" in capsys.readouterr().err
    await trim_streams(stack.redis, group_stream_keys(stack.settings.partitions), retention_s=0)
    assert await replay_command.run(stack.settings, "all", allow_loss=False, out=io.StringIO()) == 1
    assert "replay data refused: 2 applied batches of 1 job(s)" in capsys.readouterr().err
