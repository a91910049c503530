"""Bring a database to what this code needs: the SQL migrations, then the datasets' typed tables."""

from __future__ import annotations

from pathlib import Path

import attrs

from ingestro.database import create_pool
from ingestro.database.migrations import migrate
from ingestro.datasets.registry import Declared, sync


@attrs.frozen
class Prepared:
    migrations: list[str]
    datasets: list[Declared]


async def prepare_database(database_url: str, datasets_dir: Path | None = None) -> Prepared:
    """Apply the migrations not yet applied, then declare the built-in datasets and those in ``datasets_dir``.

    Safe to run twice and from several processes at once. Raises InvalidDeclaration (a
    RefusedChange for a change that is refused) naming the dataset, and its file, that cannot be declared.
    """
    applied = await migrate(database_url)
    pool = await create_pool(database_url, max_size=1)
    try:
        declared = await sync(pool, datasets_dir)
    finally:
        await pool.close()
    return Prepared(applied, declared)
