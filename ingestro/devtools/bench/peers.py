"""A peer in the same run: pgloader loads the same generated file, so Ingestro's rate has a second yardstick.

pgloader (Debian's package, installed here with apt-get when absent, as scripts/install-system-deps
installs the servers) reads the sample CSV as it is, unnormalized, and COPYs it into a table with the
dataset's fields and their types. It validates only what PostgreSQL's types refuse (a bad date, a
negative age slips through), computes no content hash, removes no duplicate and keeps no exactly-once
bookkeeping: it does less than Ingestro per row, so the ratio flatters pgloader.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg
import attrs

from ingestro.datasets import SQL_TYPES, Dataset
from ingestro.datasets.tables import qualified_table, quote_ident
from ingestro.devtools.bench.stack import BenchError

TABLE = "bench_peer"
_INSTALL_TIMEOUT_S = 600.0
#: How long pgloader may take: only a guard against a hang. It rejected 5 to 12 bad rows a second here,
#: which puts the 1M-row sample (about 7,000 rows PostgreSQL's types refuse) at 10 to 20 minutes.
_BASE_TIMEOUT_S = 120.0
_TIMEOUT_S_PER_ROW = 0.005


@attrs.frozen
class Peer:
    name: str
    #: Rows of the file (header excluded) and the rows the peer loaded (those PostgreSQL accepted).
    rows: int
    loaded: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def ensure_pgloader() -> str:
    """pgloader's path, installed with apt-get (through sudo when not root) if absent; else raise BenchError."""
    found = shutil.which("pgloader")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise BenchError("--peers needs pgloader, and there is no apt-get here to install it: install pgloader")
    as_root = [] if os.geteuid() == 0 else ["sudo"]
    if as_root and shutil.which("sudo") is None:
        raise BenchError("--peers needs pgloader; installing it takes root or sudo: install pgloader")
    for step in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "pgloader"],
    ):
        done = subprocess.run(
            [*as_root, "env", "DEBIAN_FRONTEND=noninteractive", *step],
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"could not install pgloader ({' '.join(step)}): {done.stderr.strip()[-500:]}")
    found = shutil.which("pgloader")
    if not found:
        raise BenchError("apt-get installed pgloader, but it is not on the PATH")
    return found


def _command_file(sample: Path, database_url: str, dataset: Dataset, batch_rows: int) -> str:
    fields = ", ".join(f"{name} [null if blanks]" for name in dataset.field_names)
    columns = ", ".join(dataset.field_names)
    return f"""
LOAD CSV
     FROM '{sample}' ({fields})
     INTO {database_url}?tablename={TABLE} ({columns})
     WITH skip header = 1, fields optionally enclosed by '"', fields escaped by double-quote,
          fields terminated by ',', batch rows = {batch_rows}
;
"""


async def _create_table(database_url: str, dataset: Dataset) -> None:
    columns = ", ".join(f"{quote_ident(f.name)} {SQL_TYPES[f.type]}" for f in dataset.fields)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(f"DROP TABLE IF EXISTS {qualified_table(TABLE)}")
        await connection.execute(f"CREATE TABLE {qualified_table(TABLE)} ({columns})")
    finally:
        await connection.close()


async def _loaded(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        loaded = int(await connection.fetchval(f"SELECT count(*) FROM {qualified_table(TABLE)}"))
        await connection.execute(f"DROP TABLE {qualified_table(TABLE)}")
        await connection.execute("CHECKPOINT")  # the next run starts without this load's dirty pages
        return loaded
    finally:
        await connection.close()


def load_with_pgloader(
    database_url: str, dataset: Dataset, sample: Path, rows: int, work_dir: Path, batch_rows: int
) -> Peer:
    """Time pgloader loading the CSV ``sample`` (``rows`` rows) into a fresh table of ``dataset``'s fields.

    ``batch_rows``: rows per COPY. pgloader answers a COPY that fails on a bad row by sending the rest
    of the batch again without it, so on a file with bad rows its default (25,000) costs it minutes;
    the bench gives it Ingestro's batch size, or 500 rows if that is smaller (each bad row costs it
    less in smaller batches).
    """
    pgloader = ensure_pgloader()
    asyncio.run(_create_table(database_url, dataset))
    work_dir.mkdir(parents=True, exist_ok=True)
    commands = work_dir / "load.pgloader"
    commands.write_text(_command_file(sample, database_url, dataset, batch_rows), encoding="utf-8")
    timeout_s = _BASE_TIMEOUT_S + rows * _TIMEOUT_S_PER_ROW
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [pgloader, "--root-dir", str(work_dir), "--logfile", str(work_dir / "pgloader.log"), str(commands)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"pgloader did not finish within {timeout_s:.0f} s (its log: {work_dir})") from None
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"pgloader failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
    return Peer("pgloader", rows, asyncio.run(_loaded(database_url)), seconds)
