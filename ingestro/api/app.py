"""The ASGI application: routes, error handling, and the clients it opens and closes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ingestro.api.auth import Need, guarded
from ingestro.api.body_deadlines import BodyDeadlines
from ingestro.api.column_mappings import get_mapping, put_mapping
from ingestro.api.console import console_routes
from ingestro.api.context import AppContext
from ingestro.api.data import list_data
from ingestro.api.dataset_inference import infer
from ingestro.api.datasets import get_dataset, list_datasets, put_dataset
from ingestro.api.dlq import list_dead_letters
from ingestro.api.error_counts import error_counts
from ingestro.api.imports import create_import
from ingestro.api.job_events import job_events
from ingestro.api.jobs import get_job, list_errors, list_jobs
from ingestro.api.metrics import counting_refusals, metrics_endpoint
from ingestro.api.openapi import openapi_endpoint
from ingestro.api.operators import redrive_dead_letter, stream_backlog
from ingestro.api.parameters import RefuseControlCharacters
from ingestro.api.problems import EXCEPTION_HANDLERS, problem_response
from ingestro.api.responses import JSON
from ingestro.api.upload import upload
from ingestro.api.upload_slots import limiting_uploads
from ingestro.api.webhooks import (
    create_webhook,
    delete_webhook,
    list_webhook_dead_letters,
    list_webhooks,
    rotate_secret,
)
from ingestro.config import Settings
from ingestro.database import create_pool
from ingestro.storage import storage_for
from ingestro.streams.connections import redis_client


async def healthz(_request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 when Redis and PostgreSQL both answer, else 503 naming which did not."""
    context: AppContext = request.app.state.context
    down = []
    try:
        await context.redis.ping()
    except Exception:
        down.append("redis")
    try:
        await context.pool.fetchval("SELECT 1", timeout=5)
    except Exception:
        down.append("postgres")
    if down:
        return problem_response(503, "Service Unavailable", f"unreachable: {', '.join(down)}")
    return JSON({"status": "ready"})


def create_app(settings: Settings, *, insecure: bool = False) -> Starlette:
    """The API, opening its Redis client and PostgreSQL pool on startup (neither needs to be up yet).

    Every endpoint but health, readiness, metrics, the OpenAPI document and the web console's page and
    files (which hold no data) needs an API key, unless ``insecure``.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = redis_client(settings, socket_timeout=30)
        pool = await create_pool(settings.database_url, min_size=0, max_size=10)
        app.state.context = AppContext(settings, redis, pool, storage_for(settings), insecure)
        try:
            yield
        finally:
            await pool.close()
            await redis.aclose()

    routes: list[BaseRoute] = [
        Route("/upload", guarded(counting_refusals(limiting_uploads(upload)), Need.UPLOAD), methods=["POST"]),
        Route("/imports", guarded(create_import, Need.UPLOAD), methods=["POST"]),
        Route("/jobs", guarded(list_jobs, Need.READ_JOBS), methods=["GET"]),
        Route("/jobs/{job_id}", guarded(get_job, Need.READ_JOBS), methods=["GET"]),
        Route("/jobs/{job_id}/errors", guarded(list_errors, Need.READ_JOBS), methods=["GET"]),
        Route("/jobs/{job_id}/errors/counts", guarded(error_counts, Need.READ_JOBS), methods=["GET"]),
        Route("/jobs/{job_id}/events", guarded(job_events, Need.READ_JOBS), methods=["GET"]),
        Route("/data", guarded(list_data, Need.READ_DATA), methods=["GET"]),
        Route("/datasets", guarded(list_datasets, Need.READ_JOBS), methods=["GET"]),
        Route("/datasets/infer", guarded(infer, Need.READ_JOBS), methods=["POST"]),
        Route("/datasets/{name}", guarded(get_dataset, Need.READ_JOBS), methods=["GET"]),
        Route("/datasets/{name}/mappings", guarded(get_mapping, Need.READ_JOBS), methods=["GET"]),
        Route("/datasets/{name}/mappings", guarded(put_mapping, Need.UPLOAD), methods=["PUT"]),
        Route("/datasets/{name}", guarded(put_dataset, Need.DECLARE), methods=["PUT"]),
        Route("/dlq", guarded(list_dead_letters, Need.ADMIN), methods=["GET"]),
        Route("/dlq/{dlq_id}/redrive", guarded(redrive_dead_letter, Need.ADMIN), methods=["POST"]),
        Route("/streams", guarded(stream_backlog, Need.ADMIN), methods=["GET"]),
        Route("/webhooks", guarded(create_webhook, Need.ADMIN), methods=["POST"]),
        Route("/webhooks", guarded(list_webhooks, Need.ADMIN), methods=["GET"]),
        Route("/webhooks/{webhook_id}", guarded(delete_webhook, Need.ADMIN), methods=["DELETE"]),
        Route("/webhooks/{webhook_id}/rotate", guarded(rotate_secret, Need.ADMIN), methods=["POST"]),
        Route("/webhooks/{webhook_id}/dead-letters", guarded(list_webhook_dead_letters, Need.ADMIN), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint(settings.partitions), methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        *console_routes(),
    ]
    body_deadlines = Middleware(
        BodyDeadlines, idle_timeout_s=settings.body_idle_timeout_s, min_rate=settings.body_min_rate
    )
    return Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=[body_deadlines, Middleware(RefuseControlCharacters)],
    )
