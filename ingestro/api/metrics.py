"""``GET /metrics``, and the counting of refused uploads around ``POST /upload``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.context import AppContext
from ingestro.api.problems import Problem
from ingestro.api.upload import MEDIA_TYPES
from ingestro.formats.readers import FORMATS
from ingestro.metrics import UPLOADS
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams.collector import SharedStateCollector, streams_read
from ingestro.streams.outages import is_outage

Endpoint = Callable[[Request], Awaitable[Response]]

#: Why an upload was refused, by the status of the problem raised: the client's doing.
_REFUSALS = {
    400: "bad_request",
    404: "unknown_dataset",
    408: "too_slow",
    409: "key_in_use",  # the Idempotency-Key's first upload is still being received
    413: "too_large",
    415: "unsupported_type",
    422: "key_reused",  # the Idempotency-Key was used for another upload
    429: "too_many_uploads",
}
#: Any other 4xx problem: still a refusal, never counted as a server failure.
_OTHER_REFUSAL = "refused"
#: The outcomes that are the server's failure (5xx): what ops/prometheus/alerts.yml alerts on.
SERVER_FAILURES = ("error", "unavailable")


def metrics_endpoint(partitions: int) -> Endpoint:
    """GET /metrics: this process's metrics, then the shared-state gauges read for this scrape.

    Each app gets its own collector (in its own registry), so the process-wide
    registry never holds one that outlives its app's clients. ``partitions``: the deployment's
    (``INGESTRO_PARTITIONS``); the backlog is reported per partition, which the dashboard sums per group.
    """
    collector = SharedStateCollector(streams_read(group_stream_keys(partitions)))
    shared = CollectorRegistry()
    shared.register(collector)

    async def metrics(request: Request) -> Response:
        context: AppContext = request.app.state.context
        await collector.refresh(context.redis, context.pool)
        # Two expositions back to back are one valid exposition: their metric names are disjoint.
        return Response(generate_latest(REGISTRY) + generate_latest(shared), media_type=CONTENT_TYPE_LATEST)

    return metrics


def counting_refusals(endpoint: Endpoint) -> Endpoint:
    """Count every upload ``endpoint`` refuses, by why; accepted ones are counted where their size is known."""

    async def counted(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as error:
            UPLOADS.labels(_refusal(error), _declared_format(request)).inc()
            raise

    return counted


def _refusal(error: Exception) -> str:
    if isinstance(error, Problem) and error.status < 500:
        return _REFUSALS.get(error.status, _OTHER_REFUSAL)
    if is_outage(error) or (isinstance(error, Problem) and error.status == 503):
        return "unavailable"
    return "error"


def _declared_format(request: Request) -> str:
    """The format the request declared (``?format=`` or its content type), else ``unknown``: a bounded label."""
    declared = request.query_params.get("format")
    if declared in FORMATS:
        return declared
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return MEDIA_TYPES.get(media_type, "unknown")
