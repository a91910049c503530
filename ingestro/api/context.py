"""What the API's handlers share: settings and the clients of Redis, PostgreSQL and storage."""

from __future__ import annotations

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro.config import Settings
from ingestro.storage import Storage


@attrs.frozen
class AppContext:
    settings: Settings
    redis: aioredis.Redis
    pool: asyncpg.Pool
    storage: Storage
    #: No API keys: every caller is an admin of the default tenant (see api/auth.py).
    insecure: bool = False
