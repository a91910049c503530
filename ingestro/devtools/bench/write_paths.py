"""``python -m ingestro.devtools.bench.write_paths``: PostgreSQL's CPU per row for the data projection's writes.

On a private PostgreSQL, the same seeded contacts rows are written, in turn and on fresh tables:
- ``raw COPY``: the baseline's plain COPY of the normalized distinct rows (``bench.baseline``);
- ``upsert``: the data projection applying every batch, in groups as a consumer takes them.
Each is timed by the CPU its PostgreSQL backend spent (from /proc) and, for the projection, this
process's own; the median of ``--repeats`` rounds, interleaved, so that other load on a shared
machine hits every variant alike.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg

from ingestro.database import create_pool
from ingestro.database.schema import prepare_database
from ingestro.datasets import get_dataset
from ingestro.datasets.rules import check_row
from ingestro.datasets.tables import qualified_table
from ingestro.devtools.bench.baseline import BOOKKEEPING, TABLE, write_copy_file
from ingestro.devtools.samples import write_sample_file
from ingestro.devtools.servers import PostgresServer
from ingestro.domain.events import AcceptedRow, RowsAccepted
from ingestro.formats.readers import RowReader
from projections.data import DataProjection

#: A consumer's (``ingestro.cli.serve``).
_GC_THRESHOLD = 10_000
_TICK_S = 0.01  # /proc's clock ticks (USER_HZ is 100 on Linux)
_PROC = Path("/proc")


def _cpu_s(pid: int) -> float:
    stat = (_PROC / str(pid) / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def _batches(sample: Path, batch_size: int) -> list[RowsAccepted]:
    dataset = get_dataset("contacts")
    job_id = str(uuid.uuid4())
    rows: list[AcceptedRow] = []
    for row in RowReader(sample, "csv", dataset):
        if row.record is not None:
            checked = check_row(dataset, row.record)
            if checked.content_hash is not None:
                rows.append(AcceptedRow(row.line, checked.content_hash, checked.values))
    return [
        RowsAccepted(job_id, "contacts", seq, rows[start : start + batch_size], dataset.version, f"1700000000000-{seq}")
        for seq, start in enumerate(range(0, len(rows), batch_size))
    ]


async def _timed(pool: asyncpg.Pool, run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(backend CPU s, own CPU s) of ``run`` on the pool's one connection."""
    backend = int(await pool.fetchval("SELECT pg_backend_pid()"))
    before, own = _cpu_s(backend), time.process_time()
    await run()
    return _cpu_s(backend) - before, time.process_time() - own


async def _measure(url: str, sample: Path, copy_file: Path, repeats: int, group: int) -> dict[str, list[float]]:
    dataset = get_dataset("contacts")
    batches = _batches(sample, 500)
    # As a consumer process runs (ingestro.cli.serve): what is held from the start is frozen out of every
    # collection, and the youngest generation is collected less often. Otherwise collections walking
    # every held batch would dominate the Python figures.
    gc.freeze()
    gc.set_threshold(_GC_THRESHOLD, *gc.get_threshold()[1:])
    pool = await create_pool(url, min_size=1, max_size=1)
    table = qualified_table(dataset.table)
    rows = sum(len(b.rows) for b in batches)
    results: dict[str, list[float]] = {}

    async def project() -> None:
        projection = DataProjection(pool)
        for start in range(0, len(batches), group):
            await projection.apply_all(batches[start : start + group])

    async def raw_copy() -> None:
        columns = [*dataset.field_names, *BOOKKEEPING]
        async with pool.acquire() as connection:
            await connection.copy_to_table(TABLE, source=copy_file, columns=columns, format="csv")

    variants: dict[str, Callable[[], Awaitable[None]]] = {
        "raw COPY": raw_copy,
        "upsert": project,
    }
    try:
        for _ in range(repeats):
            for name, run in variants.items():
                await pool.execute(f"DROP TABLE IF EXISTS {qualified_table(TABLE)}")
                await pool.execute(f"CREATE TABLE {qualified_table(TABLE)} (LIKE {table} INCLUDING ALL)")
                await pool.execute(f"TRUNCATE {table}, applied_batches")
                await pool.execute("CHECKPOINT")
                backend_s, own_s = await _timed(pool, run)
                results.setdefault(f"{name} postgres", []).append(1e6 * backend_s / rows)
                if name != "raw COPY":
                    results.setdefault(f"{name} python", []).append(1e6 * own_s / rows)
    finally:
        await pool.close()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestro.devtools.bench.write_paths", description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the sample (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported (default: %(default)s)")
    parser.add_argument("--group", type=int, default=8, help="batches per transaction (default: %(default)s)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="ingestro-write-paths-"))
    root.chmod(0o711)  # as root, PostgreSQL runs as another user, which must reach its data directory
    sample, copy_file = root / "sample.csv", root / "baseline.csv"
    write_sample_file(sample, "csv", args.rows, 42)
    write_copy_file(sample, "csv", get_dataset("contacts"), copy_file)
    with PostgresServer(root / "postgres", durable=True) as postgres:
        asyncio.run(prepare_database(postgres.url))
        results = asyncio.run(_measure(postgres.url, sample, copy_file, args.repeats, args.group))
    print(f"CPU µs per accepted row, median of {args.repeats} ({args.rows:,} sample rows, groups of {args.group}):")
    for name, figures in results.items():
        print(f"  {name:<22}{statistics.median(figures):>7.2f}   ({', '.join(f'{f:.2f}' for f in figures)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
