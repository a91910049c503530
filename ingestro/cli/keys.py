"""``ingestro keys create NAME|list|revoke ID``: manage API keys directly in PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from ingestro.cli._parsers import Subcommands, add_command, subcommands
from ingestro.config import Settings
from ingestro.database import create_pool, keys
from ingestro.database.keys import Scope


def add_parser(commands: Subcommands) -> None:
    group = add_command(
        commands,
        "keys",
        "create, list or revoke API keys",
        "API keys are sent as `Authorization: Bearer <token>`. Scopes: `upload` uploads and reads the jobs it "
        "uploaded; `read` reads its tenant's jobs and errors (and the data, for the default tenant); `admin` "
        "may do everything.",
    )
    actions = subcommands(group)
    create = add_command(
        actions,
        "create",
        "create a key and print its token",
        "Create a key and print its token, this once: only its SHA-256 is stored.",
        _create,
    )
    create.add_argument("name", metavar="NAME", help="what the key is for, shown by `ingestro keys list`")
    create.add_argument(
        "--scope", choices=[scope.value for scope in Scope], default="upload", help="(default: %(default)s)"
    )
    create.add_argument("--tenant", default="default", help="the tenant whose jobs the key sees (default: %(default)s)")
    add_command(actions, "list", "list every key: id, scope, tenant, created, revoked, name", run=_list)
    revoke = add_command(
        actions, "revoke", "revoke a key", "Revoke a key: its next request is a 401. The key stays listed.", _revoke
    )
    revoke.add_argument("key_id", metavar="ID", help="the key's id, as `ingestro keys list` shows it")


def _create(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_with_pool(settings, lambda pool: create(pool, args.name, Scope(args.scope), args.tenant)))


def _list(_args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_with_pool(settings, listing))


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_with_pool(settings, lambda pool: revoke(pool, args.key_id)))


async def _with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        return await work(pool)
    finally:
        await pool.close()


async def create(pool: asyncpg.Pool, name: str, scope: Scope, tenant: str) -> int:
    key, token = await keys.create(pool, name, scope, tenant)
    print(f"created key {key.key_id} ({key.name}, scope {key.scope.value}, tenant {key.tenant})")
    print("the token, shown this once only (send it as `Authorization: Bearer <token>`):")
    print(token)
    return 0


async def listing(pool: asyncpg.Pool) -> int:
    print(f"{'ID':<14} {'SCOPE':<7} {'TENANT':<16} {'CREATED':<20} {'REVOKED':<20} NAME")
    for key in await keys.listing(pool):
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-"
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{key.key_id:<14} {key.scope.value:<7} {key.tenant:<16} {created:<20} {revoked:<20} {key.name}")
    return 0


async def revoke(pool: asyncpg.Pool, key_id: str) -> int:
    """Exit status 1 when there is no such active key."""
    if not await keys.revoke(pool, key_id):
        print(f"ingestro keys: no active key {key_id!r}")
        return 1
    print(f"revoked key {key_id}")
    return 0
