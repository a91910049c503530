"""API keys: bearer tokens with a scope and a tenant, stored only as their SHA-256.

A token is ``ingestro_<key id>_<secret>``, the secret 32 random bytes. Hashing it with
SHA-256 is enough: a slow KDF (bcrypt, scrypt, argon2) protects *guessable* secrets such
as passwords from an offline search, but a 256-bit random secret cannot be searched, so
the stored hash gives nothing away either way, and checking a key costs a microsecond.
The key id in the token is not secret; it names the key in ``ingestro keys list`` and
``ingestro keys revoke`` without anyone having to handle the token again.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import datetime

import asyncpg
import attrs

DEFAULT_TENANT = "default"
_PREFIX = "ingestro"


class Scope(str, enum.Enum):
    """What a key may do (``ingestro/api/auth.py`` maps each scope to the endpoints it opens)."""

    UPLOAD = "upload"  # upload files, read the jobs (and their errors) it uploaded
    READ = "read"  # read the tenant's jobs and errors, and the data
    ADMIN = "admin"  # everything, the dead-letter stream included


@attrs.frozen
class ApiKey:
    key_id: str
    name: str
    tenant: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh key id and the token holding it."""
    key_id = secrets.token_hex(6)
    return key_id, f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(row["key_id"], row["name"], row["tenant"], Scope(row["scope"]), row["created_at"], row["revoked_at"])


async def create(pool: asyncpg.Pool, name: str, scope: Scope, tenant: str) -> tuple[ApiKey, str]:
    """Store a new key; return it and its token, which is shown this once and never again."""
    key_id, token = new_token()
    row = await pool.fetchrow(
        "INSERT INTO api_keys (key_id, name, tenant, scope, token_hash) VALUES ($1, $2, $3, $4, $5) RETURNING *",
        key_id,
        name,
        tenant,
        scope.value,
        hash_token(token),
    )
    assert row is not None
    return _key(row), token


async def listing(pool: asyncpg.Pool) -> list[ApiKey]:
    """Every key, revoked ones too, oldest first."""
    return [_key(row) for row in await pool.fetch("SELECT * FROM api_keys ORDER BY created_at, key_id")]


async def revoke(pool: asyncpg.Pool, key_id: str) -> bool:
    """Revoke the key at once (its next request is a 401); False when no such active key exists."""
    status = await pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL", key_id
    )
    return bool(status == "UPDATE 1")


async def is_active(pool: asyncpg.Pool, key_id: str) -> bool:
    """Whether key ``key_id`` exists and is not revoked (one primary-key lookup)."""
    return bool(await pool.fetchval("SELECT 1 FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id))


async def active_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"))


async def authenticate(pool: asyncpg.Pool, token: str) -> ApiKey | None:
    """The active key of ``token``, or None.

    Looked up by the token's hash, so the comparison never touches the token itself and
    its timing tells nothing about it.
    """
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL", hash_token(token))
    return None if row is None else _key(row)
