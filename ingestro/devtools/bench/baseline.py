"""The yardstick: a plain COPY of the sample's rows into a table equivalent to the dataset's.

The rows are read, normalized and hashed by the same code the parser runs, and
duplicates dropped, before the clock starts: the timed part is the COPY alone,
into a table with the dataset table's columns, defaults and unique content-hash
index. It is what a loader with no events, no validation and no exactly-once
bookkeeping would cost on the same server, in the same run.
"""

from __future__ import annotations

import csv
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import orjson

from ingestro.datasets import Dataset
from ingestro.datasets.rules import check_row
from ingestro.datasets.tables import DATA_SCHEMA, qualified_table
from ingestro.formats.readers import RowReader

TABLE = "bench_baseline"
#: What the data projection writes per row besides the fields (created_at, updated_at take their defaults).
BOOKKEEPING = ("content_hash", "first_job_id", "first_line", "last_job_id", "last_line")


#: Times the COPY is repeated: its rate moved from 110k to 174k rows/s between runs on a shared machine.
REPEATS = 3


@attrs.frozen
class Baseline:
    rows: int
    #: The fastest of the repeats: the ratio is then judged against the best the server showed.
    seconds: float
    #: Every repeat's time, in order.
    all_seconds: tuple[float, ...] = ()

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def _column(value: Any) -> Any:
    # csv writes None as an unquoted empty field, which COPY reads as NULL.
    return orjson.dumps(value).decode() if isinstance(value, dict) else value


def write_copy_file(sample: Path, file_format: str, dataset: Dataset, out: Path) -> int:
    """Write the sample's distinct valid rows, normalized, as COPY's CSV; return how many there are."""
    job_id = str(uuid.uuid4())
    seen: set[str] = set()
    with open(out, "w", encoding="utf-8", newline="") as text:
        writer = csv.writer(text)
        for row in RowReader(sample, file_format, dataset):
            if row.record is None:
                continue
            checked = check_row(dataset, row.record)
            if checked.content_hash is None or checked.content_hash in seen:
                continue
            seen.add(checked.content_hash)
            values = [_column(checked.values[name]) for name in dataset.field_names]
            writer.writerow([*values, checked.content_hash, job_id, row.line, job_id, row.line])
    return len(seen)


async def copy_baseline(database_url: str, dataset: Dataset, copy_file: Path, repeats: int = REPEATS) -> Baseline:
    """Time COPY of ``copy_file`` into a fresh copy of the dataset's table, ``repeats`` times; keep the fastest."""
    connection = await asyncpg.connect(database_url)
    times: list[float] = []
    try:
        for _ in range(repeats):
            await connection.execute(
                f"CREATE TABLE {qualified_table(TABLE)} (LIKE {qualified_table(dataset.table)} INCLUDING ALL)"
            )
            started = time.perf_counter()
            await connection.copy_to_table(
                TABLE,
                schema_name=DATA_SCHEMA,
                source=copy_file,
                columns=[*dataset.field_names, *BOOKKEEPING],
                format="csv",
            )
            times.append(time.perf_counter() - started)
            rows = int(await connection.fetchval(f"SELECT count(*) FROM {qualified_table(TABLE)}"))
            await connection.execute(f"DROP TABLE {qualified_table(TABLE)}")
            # Start the next COPY, and the pipeline's run, without these dirty pages still to be written back.
            await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
    return Baseline(rows, min(times), tuple(times))
