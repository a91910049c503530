"""Replay: rebuild a projection's tables from the retained stream events, then swap them in.

``ingestro replay data|errors|jobs|all``. Live ingestion goes on throughout: the
live group is never paused. A replay instead **catches up to the stream head under
a lock**:

Every projection takes part through the ``Projection`` protocol (``projections.projection``) alone;
what differs between them (their streams, tables, dead letters, trimmed facts) lives in their modules.

1. **Shadows.** In a schema of its own (``ingestro_replay_<projection>``), a copy of
   each table the projection owns (``Projection.tables`` and ``shared_tables``),
   ``LIKE public.t INCLUDING ALL`` (columns, defaults, constraints, indexes): ``data``
   owns every dataset table, ``errors`` ``validation_errors``, both their rows of
   ``applied_batches``; ``jobs`` owns ``jobs`` and ``job_batches``.
2. **Build.** The projection's own code (``apply_entries``, which announces nothing)
   runs on connections whose ``search_path`` is ``<shadow schema>, public``, so its
   unqualified table names hit the shadows (the ``data`` projection names its tables with
   their schema: it is told the shadow one); nothing is published (no BatchApplied).
   The streams are read with XRANGE in chunks up to the head seen at the start, and
   applied in groups of ``INGESTRO_GROUP_SIZE`` entries per transaction like the live
   consumers (whose result does not depend on the grouping), on connections with
   ``synchronous_commit`` off: a crash loses only shadows. ``jobs`` reads the files
   stream, then the job events, then the dead letters, so a job finished since its
   entry was dead-lettered stays finished. A second pass catches up, unlocked, with what
   arrived meanwhile.
3. **Swap.** One transaction locks the live tables in ACCESS EXCLUSIVE mode
   (``shared_tables`` such as ``applied_batches`` first, in the order the live projection takes them), applies
   to the shadows what arrived since, up to the head read under the lock (no live
   writer can commit past it now), checks that nothing is lost and that no dataset
   was declared meanwhile (the shadow would lack its columns; declarations wait for
   the swap), then drops the live tables and moves the shadows into ``public``
   (restoring index names), replaces the projection's rows of its shared tables, and
   commits. Readers and writers wait for that transaction only: the entries since the
   unlocked pass, and the swap. Not EXCLUSIVE first, upgraded for the swap: a live
   transaction that reads a table before writing it (the ``jobs`` projection reads the
   statuses it may change) would hold a lock the upgrade waits for while it waits for
   ours, a deadlock. The live consumers that were blocked then go on against the new
   tables (PostgreSQL resolves their statements' table names again): entries up to the
   head find their batch in the replayed ``applied_batches`` and change nothing; later
   ones apply as usual.

**Refusal.** A replay rebuilds only what the retained events hold. When the live
tables know batches (or, for ``jobs``, jobs and counted batches) that the replay
did not reproduce (``Projection.lost``), their events were trimmed by retention: the swap is refused,
naming the jobs; ``ingestro reparse JOB…`` regenerates their events from the stored
files (``--allow-loss`` swaps anyway). A ``jobs`` replay applies the FileReceived of
a job whose entry was trimmed from its ``jobs`` row (``Projection.restore_trimmed``), which records all of it
(``ingestro.database.job_sources``): reparse re-emits the rest of a job's events, not that one.

Not carried over by the swap: grants on the tables (the migrations give none) and
objects depending on them (a view would make the swap fail, leaving the live tables
as they were). Values defined as "when applied" (``updated_at``, ``applied_at``,
``started_at``…) are rebuild time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro.database import create_pool
from ingestro.datasets.registry import hold_declarations
from ingestro.datasets.tables import DATA_SCHEMA, qualified_table, quote_ident
from ingestro.streams.connections import text
from ingestro.streams.names import logical_stream, stream_keys
from ingestro.streams.retention import id_key
from ingestro.streams.runtime import Entry
from projections.projection import Projection
from projections.registry import PROJECTIONS, projection_named

SCHEMA_PREFIX = "ingestro_replay_"
#: Entries read per XRANGE.
_CHUNK = 100
_PROGRESS_EVERY_S = 1.0
_LOCK_TIMEOUT = "10s"


class ReplayRefused(Exception):
    """The replay would lose data, or cannot run now; nothing was swapped."""


@attrs.frozen
class Outcome:
    projection: str
    #: Entries applied, per stream.
    entries: dict[str, int]
    seconds: float
    #: Batches (or job facts) the live tables had that the replay did not reproduce, per job (``--allow-loss``).
    lost: dict[str, int]


@attrs.define
class _Progress:
    """Entries done of the total per stream, and entries/s, on ``out`` about once a second."""

    out: TextIO
    projection: str
    started: float = attrs.field(factory=time.monotonic)
    done: dict[str, int] = attrs.field(factory=dict)
    totals: dict[str, int] = attrs.field(factory=dict)
    _shown: float = 0.0

    def add(self, stream: str, count: int, *, force: bool = False) -> None:
        self.done[stream] = self.done.get(stream, 0) + count
        now = time.monotonic()
        if force or now - self._shown >= _PROGRESS_EVERY_S:
            self._shown = now
            self.say(stream)

    def say(self, stream: str) -> None:
        done, total = self.done.get(stream, 0), self.totals.get(stream, 0)
        rate = sum(self.done.values()) / max(time.monotonic() - self.started, 1e-9)
        self.out.write(
            f"replay {self.projection}: {stream} {done:,} of {max(total, done):,} entries, {rate:,.0f} entries/s\n"
        )
        self.out.flush()


@attrs.define
class _Replay:
    """One projection's replay: shadows, build, catch-up, swap."""

    #: The projection's code, on the shadow pool (its unqualified table names are the shadows), announcing nothing.
    projection: Projection
    redis: aioredis.Redis
    lock: asyncpg.Connection
    progress: _Progress
    #: Entries applied per transaction.
    group_size: int
    #: The tables swapped whole (``Projection.tables``).
    tables: tuple[str, ...]
    #: The stream keys it reads (``Projection.streams``, each row stream as its partitions), in the replay order.
    streams: tuple[str, ...]
    #: The last entry id applied, per stream ("0-0": none yet).
    read_to: dict[str, str] = attrs.field(factory=dict)

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def schema(self) -> str:
        return SCHEMA_PREFIX + self.name

    async def create_shadows(self) -> None:
        schema = quote_ident(self.schema)
        await self.lock.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # a replay that died left it
        await self.lock.execute(f"CREATE SCHEMA {schema}")
        for table in [*self.tables, *self.projection.shared_tables]:
            await self.lock.execute(
                f"CREATE TABLE {qualified_table(table, self.schema)} (LIKE {qualified_table(table)} INCLUDING ALL)"
            )

    async def drop_shadows(self) -> None:
        await self.lock.execute(f"DROP SCHEMA IF EXISTS {quote_ident(self.schema)} CASCADE")

    async def heads(self) -> dict[str, str]:
        """The newest entry id of each stream now ("0-0" when it has none)."""
        found = {}
        for stream in self.streams:
            newest: Any = await self.redis.xrevrange(stream, count=1)
            found[stream] = text(newest[0][0]) if newest else "0-0"
        return found

    async def read_up_to(self, heads: dict[str, str]) -> None:
        """Apply every entry after ``read_to`` up to ``heads``, stream by stream, in the replay order."""
        for stream in self.streams:
            after = self.read_to.setdefault(stream, "0-0")
            while id_key(after) < id_key(heads[stream]):
                chunk: Any = await self.redis.xrange(stream, f"({after}", heads[stream], count=_CHUNK)
                if not chunk:
                    break
                entries = [Entry(stream, text(entry_id), fields) for entry_id, fields in chunk]
                for start in range(0, len(entries), self.group_size):  # grouped like the live consumers
                    await self.projection.apply_entries(entries[start : start + self.group_size])
                after = self.read_to[stream] = entries[-1].id
                self.progress.add(logical_stream(stream), len(entries))  # a row stream's partitions count as one
            await self.projection.restore_trimmed(stream, self.lock)

    async def swap(self, allow_loss: bool) -> dict[str, int]:
        """Lock the live tables, catch up to the head, check, swap; return what was lost (when allowed)."""
        live = [*self.projection.shared_tables, *self.tables]
        async with self.lock.transaction():
            await hold_declarations(self.lock)  # a dataset's table keeps its columns until we commit
            await self.lock.execute(f"LOCK TABLE {', '.join(map(qualified_table, live))} IN ACCESS EXCLUSIVE MODE")
            # No live writer can commit now: whatever it applied is at or below these heads.
            await self.read_up_to(await self.heads())
            lost = await self.projection.lost(self.lock, self.schema)
            if lost and not allow_loss:
                raise ReplayRefused(_refusal(self.projection, lost))
            for table in self.tables:
                if await self._columns(DATA_SCHEMA, table) != await self._columns(self.schema, table):
                    raise ReplayRefused(
                        f"replay {self.name}: the columns of {table} changed while it ran (a dataset was "
                        "declared); nothing was swapped: run it again"
                    )
            for table in self.tables:
                names = await self._index_names(qualified_table(table))
                await self.lock.execute(f"DROP TABLE {qualified_table(table)}")
                await self.lock.execute(
                    f"ALTER TABLE {qualified_table(table, self.schema)} SET SCHEMA {quote_ident(DATA_SCHEMA)}"
                )
                await self._restore_index_names(table, names)
            for table in self.projection.shared_tables:  # only the projection's own rows
                await self.lock.execute(f"DELETE FROM {qualified_table(table)} WHERE projection = $1", self.name)
                await self.lock.execute(
                    f"INSERT INTO {qualified_table(table)}"
                    f" SELECT * FROM {qualified_table(table, self.schema)} WHERE projection = $1",
                    self.name,
                )
        return lost

    async def _columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        rows = await self.lock.fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            schema,
            table,
        )
        return [(row["column_name"], row["data_type"]) for row in rows]

    async def _index_names(self, table: str) -> dict[str, str]:
        """Index definition (without its name and table) -> index name, for the indexes of ``table``."""
        rows = await self.lock.fetch(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass",
            table,
        )
        return {_index_shape(row["def"]): row["relname"] for row in rows}

    async def _restore_index_names(self, table: str, original: dict[str, str]) -> None:
        """Give the moved table's indexes the names the live ones had (migrations may name them)."""
        for shape, name in (await self._index_names(qualified_table(table))).items():
            wanted = original.get(shape)
            if wanted is not None and wanted != name:
                await self.lock.execute(f"ALTER INDEX {qualified_table(name)} RENAME TO {quote_ident(wanted)}")


def _index_shape(definition: str) -> str:
    unique = definition.startswith("CREATE UNIQUE")
    return f"{unique}:{definition.partition(' USING ')[2]}"


def _refusal(projection: Projection, lost: dict[str, int]) -> str:
    jobs = sorted(lost)
    shown = ", ".join(jobs[:10]) + (f" and {len(jobs) - 10} more" if len(jobs) > 10 else "")
    return (
        f"replay {projection.name} refused: {sum(lost.values())} {projection.facts} of {len(jobs)} job(s) are in the"
        " live tables "
        f"but not in the retained events (retention trimmed them): {shown}. Regenerate their events with "
        f"`ingestro reparse {' '.join(jobs[:10])}{' …' if len(jobs) > 10 else ''}` (or `ingestro reparse --all`), "
        "then replay again; or pass --allow-loss to rebuild without them"
    )


async def replay(
    database_url: str,
    redis: aioredis.Redis,
    projection: str,
    *,
    allow_loss: bool = False,
    classes: Mapping[str, type[Projection]] = PROJECTIONS,
    group_size: int = 8,
    partitions: int,
    out: TextIO | None = None,
) -> Outcome:
    """Rebuild ``projection``'s tables from the retained events and swap them in; see the module docstring.

    ``classes``: the projections by name, whose code rebuilds the tables: the registered ones, or some replaced
    by new code (``{**PROJECTIONS, "data": NewDataProjection}``). ``partitions``: the deployment's
    (``INGESTRO_PARTITIONS``), whose every partition it reads (the data projection orders rows by upload position
    then line, so the order the partitions are read in changes nothing). Progress goes to ``out`` (default stderr).
    Raises ``ReplayRefused`` (nothing swapped) when the replay would lose data and ``allow_loss`` is not given,
    or when another replay of the same projection is running; ``UnknownProjection`` for a name not in ``classes``.
    """
    code = projection_named(projection, classes)
    lock_pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        lock: asyncpg.Connection
        async with lock_pool.acquire() as lock:  # released: the advisory lock goes with the session's reset
            return await _replay(
                lock,
                database_url,
                redis,
                code,
                allow_loss,
                group_size,
                stream_keys(code.streams, partitions),
                out or sys.stderr,
            )
    finally:
        await lock_pool.close()


async def _replay(
    lock: asyncpg.Connection,
    database_url: str,
    redis: aioredis.Redis,
    code: type[Projection],
    allow_loss: bool,
    group_size: int,
    streams: tuple[str, ...],
    out: TextIO,
) -> Outcome:
    started = time.monotonic()
    name = code.name
    schema = SCHEMA_PREFIX + name
    if not await lock.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", schema):
        raise ReplayRefused(f"another `ingestro replay {name}` is running")
    shadow_pool = await create_pool(
        database_url,
        min_size=1,
        max_size=2,
        server_settings={
            "search_path": f"{quote_ident(schema)}, public",
            # A crash loses only the shadows, which a new replay makes again: no fsync per commit.
            "synchronous_commit": "off",
            # A dataset declared while we hold the live tables waits for us, and the projection's code waits
            # for it (declarations are serialized by a lock the projection shares): give up rather than hang.
            "lock_timeout": _LOCK_TIMEOUT,
        },
    )
    progress = _Progress(out, name)
    projection = code.in_shadow(shadow_pool, schema)
    run = _Replay(projection, redis, lock, progress, max(group_size, 1), await projection.tables(), streams)
    try:
        await run.create_shadows()
        for stream in streams:
            progress.totals[logical_stream(stream)] = progress.totals.get(logical_stream(stream), 0) + int(
                await redis.xlen(stream)
            )
        await run.read_up_to(await run.heads())
        await run.read_up_to(await run.heads())  # what arrived meanwhile, unlocked: the locked pass stays short
        try:
            lost = await run.swap(allow_loss)
        except asyncpg.exceptions.LockNotAvailableError:
            raise ReplayRefused(
                f"replay {name}: a dataset was being declared during the swap; nothing was swapped: run it again"
            ) from None
        for stream in dict.fromkeys(logical_stream(stream) for stream in streams):
            progress.add(stream, 0, force=True)
    finally:
        await shadow_pool.close()
        await run.drop_shadows()
    return Outcome(name, dict(progress.done), time.monotonic() - started, lost)
