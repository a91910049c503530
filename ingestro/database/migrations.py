"""The SQL migrations: ``NNN_name.sql`` files, applied in name order and recorded in ``schema_migrations``.

They are the top-level ``db/`` folder of the source tree, installed as the package ``ingestro.migrations``
(see pyproject), so a wheel carries them and a source checkout reads them in place.
"""

from __future__ import annotations

import logging
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x1A6E57  # advisory lock: concurrent `ingestro migrate` runs take turns (held per session)


def migration_files() -> list[Traversable]:
    """Every migration, in the order they are applied."""
    found = (entry for entry in resources.files("ingestro.migrations").iterdir() if entry.name.endswith(".sql"))
    return sorted((entry for entry in found if entry.name[:1].isdigit()), key=lambda entry: entry.name)


async def migrate(database_url: str) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; return their names.

    Safe to run twice and from several processes at once.
    """
    files = migration_files()
    if not files:
        raise FileNotFoundError("no migrations found in the package ingestro.migrations")
    applied: list[str] = []
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for path in files:
            async with connection.transaction():
                done = await connection.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", path.name)
                if done:
                    continue
                await connection.execute(path.read_text())
                await connection.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.name)
                applied.append(path.name)
                log.info("applied migration", extra={"migration": path.name})
    finally:
        await connection.close()
    return applied
