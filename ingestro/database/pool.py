"""PostgreSQL connection pools whose json and jsonb columns take and give Python values."""

from __future__ import annotations

import asyncpg
import orjson


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
