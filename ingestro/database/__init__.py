"""PostgreSQL: connection pools, the SQL migrations, and the rows no projection owns (API keys, job sources)."""

from __future__ import annotations

from ingestro.database.pool import create_pool

__all__ = ["create_pool"]
