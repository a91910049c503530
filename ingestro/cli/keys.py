"""``ingestro keys create|list|revoke``: manage API keys directly in PostgreSQL."""

from __future__ import annotations

from ingestro.database import create_pool, keys
from ingestro.database.keys import Scope


async def run(database_url: str, action: str, name_or_id: str | None, scope: str, tenant: str) -> int:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        if action == "create":
            assert name_or_id is not None
            key, token = await keys.create(pool, name_or_id, Scope(scope), tenant)
            print(f"created key {key.key_id} ({key.name}, scope {key.scope.value}, tenant {key.tenant})")
            print("the token, shown this once only (send it as `Authorization: Bearer <token>`):")
            print(token)
            return 0
        if action == "list":
            print(f"{'ID':<14} {'SCOPE':<7} {'TENANT':<16} {'CREATED':<20} {'REVOKED':<20} NAME")
            for key in await keys.listing(pool):
                revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-"
                created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
                print(f"{key.key_id:<14} {key.scope.value:<7} {key.tenant:<16} {created:<20} {revoked:<20} {key.name}")
            return 0
        assert action == "revoke" and name_or_id is not None
        if not await keys.revoke(pool, name_or_id):
            print(f"ingestro keys: no active key {name_or_id!r}")
            return 1
        print(f"revoked key {name_or_id}")
        return 0
    finally:
        await pool.close()
