"""What the API's handlers share: settings and the clients of Redis, PostgreSQL and storage."""

from __future__ import annotations

import asyncpg
import attrs
import redis.asyncio as aioredis

from ingestro.config import Settings
from ingestro.datasets.registry import DatasetRegistry
from ingestro.storage import Storage


@attrs.define
class StreamCount:
    """Event streams (``GET /jobs/{id}/events``) this process serves now; ``api/job_events.py`` caps them."""

    open: int = 0


@attrs.frozen
class AppContext:
    settings: Settings
    redis: aioredis.Redis
    pool: asyncpg.Pool
    storage: Storage
    #: No API keys: every caller is an admin of the default tenant (see api/auth.py).
    insecure: bool = False
    event_streams: StreamCount = attrs.field(factory=StreamCount)
    datasets: DatasetRegistry = attrs.field(
        default=attrs.Factory(lambda self: DatasetRegistry(self.pool), takes_self=True)
    )
