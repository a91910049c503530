"""The ``notifications`` consumer: deliver job events to the tenants' webhook endpoints, signed.

It reads JobStatusChanged from the job-status stream in a consumer group of its own, so a slow or dead
receiver delays only notifications, never a job. A job that became ``completed``, ``failed`` or ``stalled``
is POSTed to every endpoint of its tenant subscribed to ``job.<status>``, at once (one endpoint never waits on
another), as a Standard Webhooks message (``ingestro.domain.webhook_signatures``) whose id is the same for
every delivery of that job reaching that status: at least once, and receivers de-duplicate on ``webhook-id``.
Each attempt has a bounded timeout; a network error, a timeout or an answer other than 2xx is tried again with
backoff, ``attempts`` times in all, then the delivery is recorded in the endpoint's dead letters
(``GET /webhooks/{id}/dead-letters``). Endpoints' addresses are checked like pull imports' sources
(``INGESTRO_IMPORT_ALLOW``), and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import asyncpg
import attrs
import httpx
import orjson

from ingestro.database import webhooks
from ingestro.domain import codec
from ingestro.domain.events import JobStatusChanged
from ingestro.domain.jobs import JobStatus
from ingestro.domain.webhook_signatures import headers
from ingestro.sources import AllowList, FetchFailed, Retryable, send_checked
from ingestro.streams.names import JOB_STATUS_STREAM, NOTIFICATIONS_GROUP
from ingestro.streams.runtime import Entry

log = logging.getLogger(__name__)

#: The statuses told, as event types.
TOLD = {status.value: f"job.{status.value}" for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STALLED)}
#: Each attempt's limits: a receiver that takes longer is retried later.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def payload(event: JobStatusChanged) -> dict[str, Any]:
    """The message body: the Standard Webhooks ``type``, ``timestamp`` and ``data`` (the job's status and counts)."""
    return {
        "type": TOLD[event.status],
        "timestamp": datetime.now(UTC).isoformat(),
        "data": attrs.asdict(event),
    }


@attrs.define
class Notifications:
    """Handles JobStatusChanged."""

    name: ClassVar[str] = NOTIFICATIONS_GROUP
    streams: ClassVar[tuple[str, ...]] = (JOB_STATUS_STREAM,)

    pool: asyncpg.Pool
    allow: AllowList
    attempts: int = 5
    backoff_s: float = 1.0

    async def __call__(self, entry: Entry) -> None:
        event = codec.decode(entry.fields)
        if isinstance(event, JobStatusChanged) and event.status in TOLD:
            await self.notify(event)

    async def notify(self, event: JobStatusChanged) -> None:
        endpoints = await webhooks.subscribed(self.pool, event.job_id, TOLD[event.status])
        if not endpoints:
            return
        message_id = f"msg_{event.job_id}_{event.status}"  # stable: receivers de-duplicate on it
        body = payload(event)
        async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, follow_redirects=False) as client:
            await asyncio.gather(*(self._deliver(client, endpoint, message_id, body) for endpoint in endpoints))

    async def _deliver(
        self, client: httpx.AsyncClient, endpoint: webhooks.Endpoint, message_id: str, body: dict[str, Any]
    ) -> None:
        content = orjson.dumps(body)
        error = "no attempt was made"
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            signed = headers(endpoint.secrets, message_id, int(time.time()), content)
            try:
                response = await send_checked(
                    client, "POST", endpoint.url, self.allow, {**signed, "content-type": "application/json"}, content
                )
            except Retryable as failure:
                error = str(failure)
                continue
            except FetchFailed as refused:
                error = str(refused)
                break
            await response.aclose()
            if response.is_success:
                log.info("webhook delivered", extra={"webhook_id": endpoint.webhook_id, "event_id": message_id})
                return
            error = f"the endpoint answered {response.status_code}"
        log.warning("webhook dead-lettered", extra={"webhook_id": endpoint.webhook_id, "event_id": message_id})
        await webhooks.dead_letter(self.pool, endpoint.webhook_id, message_id, body, attempt + 1, error)
