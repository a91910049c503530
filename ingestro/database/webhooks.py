"""Webhook endpoints and their dead letters, in PostgreSQL: what ``/webhooks`` writes and ``notifications`` reads."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import attrs

from ingestro.domain.webhook_signatures import new_secret

#: The job events an endpoint may subscribe to: the statuses a job ends in, and a stall.
EVENTS = ("job.completed", "job.failed", "job.stalled")


@attrs.frozen
class Endpoint:
    webhook_id: str
    tenant: str
    url: str
    events: tuple[str, ...]
    #: Newest first; the delivery is signed with each.
    secrets: tuple[str, ...]


def _endpoint(row: asyncpg.Record) -> Endpoint:
    return Endpoint(str(row["webhook_id"]), row["tenant"], row["url"], tuple(row["events"]), tuple(row["secrets"]))


async def register(pool: asyncpg.Pool, tenant: str, url: str, events: tuple[str, ...]) -> Endpoint:
    row = await pool.fetchrow(
        "INSERT INTO webhooks (webhook_id, tenant, url, events, secrets) VALUES ($1, $2, $3, $4, $5) RETURNING *",
        uuid.uuid4(),
        tenant,
        url,
        list(events),
        [new_secret()],
    )
    return _endpoint(row)


async def endpoints(pool: asyncpg.Pool, tenant: str) -> list[Endpoint]:
    rows = await pool.fetch("SELECT * FROM webhooks WHERE tenant = $1 ORDER BY created_at, webhook_id", tenant)
    return [_endpoint(row) for row in rows]


async def subscribed(pool: asyncpg.Pool, job_id: str, event: str) -> list[Endpoint]:
    """The endpoints of the job's tenant subscribed to ``event``."""
    rows = await pool.fetch(
        "SELECT w.* FROM webhooks w JOIN jobs j ON j.tenant = w.tenant WHERE j.job_id = $1 AND $2 = ANY(w.events)",
        uuid.UUID(job_id),
        event,
    )
    return [_endpoint(row) for row in rows]


async def delete(pool: asyncpg.Pool, tenant: str, webhook_id: str) -> bool:
    result = await pool.execute("DELETE FROM webhooks WHERE webhook_id = $1 AND tenant = $2", webhook_id, tenant)
    return bool(result != "DELETE 0")


async def rotate(pool: asyncpg.Pool, tenant: str, webhook_id: str) -> Endpoint | None:
    """A new secret first; the newest old one is kept until the next rotation, so receivers can switch over."""
    row = await pool.fetchrow(
        "UPDATE webhooks SET secrets = ARRAY[$3::text, secrets[1]] WHERE webhook_id = $1 AND tenant = $2 RETURNING *",
        webhook_id,
        tenant,
        new_secret(),
    )
    return _endpoint(row) if row is not None else None


async def dead_letter(
    pool: asyncpg.Pool, webhook_id: str, event_id: str, payload: dict[str, Any], attempts: int, error: str
) -> None:
    await pool.execute(
        """
        INSERT INTO webhook_dead_letters (webhook_id, event_id, payload, attempts, error) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (webhook_id, event_id) DO UPDATE
           SET attempts = EXCLUDED.attempts, error = EXCLUDED.error, failed_at = now()
        """,
        uuid.UUID(webhook_id),
        event_id,
        payload,
        attempts,
        error,
    )


async def dead_letters(pool: asyncpg.Pool, tenant: str, webhook_id: str) -> list[dict[str, Any]] | None:
    """The endpoint's failed deliveries, oldest first; None when the tenant has no such endpoint."""
    if await pool.fetchval("SELECT 1 FROM webhooks WHERE webhook_id = $1 AND tenant = $2", webhook_id, tenant) is None:
        return None
    rows = await pool.fetch(
        "SELECT event_id, payload, attempts, error, failed_at FROM webhook_dead_letters WHERE webhook_id = $1"
        " ORDER BY failed_at, event_id",
        webhook_id,
    )
    return [{**dict(row), "failed_at": row["failed_at"].isoformat()} for row in rows]
