"""PostgreSQL connections and the SQL migrations in ``db/``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import asyncpg
import orjson

log = logging.getLogger(__name__)

#: Where the plain-SQL migration files live: ``NNN_name.sql``, applied in name order.
MIGRATIONS_DIR = Path(os.environ.get("INGESTRO_MIGRATIONS_DIR", Path(__file__).resolve().parent.parent / "db"))
_MIGRATION_LOCK = 0x1A6E57  # advisory lock: concurrent `ingestro migrate` runs take turns (held per session)


def _encode_jsonb(value: object) -> bytes:
    return b"\x01" + orjson.dumps(value)  # binary jsonb: a version byte, then the text


def _decode_jsonb(data: bytes) -> object:
    return orjson.loads(data[1:])


async def _init_connection(connection: asyncpg.Connection) -> None:
    # Binary codecs, so COPY (always binary in asyncpg) can write JSON columns too.
    await connection.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )
    await connection.set_type_codec(
        "json", encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog", format="binary"
    )


async def create_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 4, server_settings: dict[str, str] | None = None
) -> asyncpg.Pool:
    """A connection pool whose json/jsonb columns take and give Python values.

    ``server_settings``: session settings of every connection (e.g. a ``search_path``).
    """
    # timeout: a connect attempt to a server that is down gives up (and is retried) after 10 s.
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        timeout=10,
        server_settings=server_settings,
    )
    assert pool is not None
    return pool


def quote_ident(name: str) -> str:
    """``name`` as a PostgreSQL identifier, safe to put in SQL text (e.g. a dataset's table)."""
    return '"' + name.replace('"', '""') + '"'


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(directory.glob("[0-9]*.sql"))


async def migrate(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; return their names.

    Safe to run twice and from several processes at once.
    """
    files = migration_files(directory)
    if not files:
        raise FileNotFoundError(f"no migrations found in {directory}")
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
