"""``/webhooks``: a tenant's endpoints for job events (admin scope), their secrets and their dead letters.

The ``notifications`` consumer delivers (``consumers.notifications``). A new endpoint's secret is shown once, in
the answer that creates it; ``POST /webhooks/{id}/rotate`` makes a new one and keeps the previous one signing
too until the next rotation, so a receiver can switch over without losing a delivery.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.auth import caller_of
from ingestro.api.bodies import bounded_body, media_type
from ingestro.api.context import AppContext
from ingestro.api.imports import check_source
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.database import webhooks
from ingestro.sources import AllowList

MAX_BODY_BYTES = 8 * 1024
MAX_URL_CHARS = 2048


def _shown(endpoint: webhooks.Endpoint, *, secret: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {"webhook_id": endpoint.webhook_id, "url": endpoint.url, "events": list(endpoint.events)}
    if secret:
        shown["secret"] = endpoint.secrets[0]
    return shown


async def _body(request: Request) -> Any:
    if media_type(request) != "application/json":
        raise Problem(415, "Unsupported Media Type", "send the endpoint as application/json")
    body = await bounded_body(request, MAX_BODY_BYTES, f"a webhook is at most {MAX_BODY_BYTES} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "Bad Request", "the body is not JSON") from None


async def create_webhook(request: Request) -> Response:
    context: AppContext = request.app.state.context
    document = await _body(request)
    shape = 'the body must be {"url": "https://…", "events": ["job.completed", "job.failed", "job.stalled"]}'
    if not isinstance(document, dict):
        raise Problem(400, "Bad Request", shape)
    url, events = document.get("url"), document.get("events", list(webhooks.EVENTS))
    if not isinstance(url, str) or not isinstance(events, list) or not events:
        raise Problem(400, "Bad Request", shape)
    if len(url) > MAX_URL_CHARS or not url.isprintable() or not url.startswith(("http://", "https://")):
        raise Problem(
            400, "Bad Request", f"the url must be an http:// or https:// URL of at most {MAX_URL_CHARS} characters"
        )
    check_source(url, AllowList(context.settings.import_allow))
    unknown = [event for event in events if event not in webhooks.EVENTS]
    if unknown:
        raise Problem(400, "Bad Request", f"unknown events {unknown!r}; choose from {', '.join(webhooks.EVENTS)}")
    endpoint = await webhooks.register(context.pool, caller_of(request).tenant, url, tuple(dict.fromkeys(events)))
    return JSON(
        _shown(endpoint, secret=True), status_code=201, headers={"Location": f"/webhooks/{endpoint.webhook_id}"}
    )


async def list_webhooks(request: Request) -> Response:
    context: AppContext = request.app.state.context
    found = await webhooks.endpoints(context.pool, caller_of(request).tenant)
    return JSON({"items": [_shown(endpoint) for endpoint in found]})


def _webhook_id(request: Request) -> str:
    try:
        return str(uuid.UUID(request.path_params["webhook_id"]))
    except ValueError:
        raise Problem(404, "Not Found", "no such webhook") from None


async def delete_webhook(request: Request) -> Response:
    context: AppContext = request.app.state.context
    if not await webhooks.delete(context.pool, caller_of(request).tenant, _webhook_id(request)):
        raise Problem(404, "Not Found", "no such webhook")
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    context: AppContext = request.app.state.context
    endpoint = await webhooks.rotate(context.pool, caller_of(request).tenant, _webhook_id(request))
    if endpoint is None:
        raise Problem(404, "Not Found", "no such webhook")
    return JSON(_shown(endpoint, secret=True))


async def list_webhook_dead_letters(request: Request) -> Response:
    context: AppContext = request.app.state.context
    letters = await webhooks.dead_letters(context.pool, caller_of(request).tenant, _webhook_id(request))
    if letters is None:
        raise Problem(404, "Not Found", "no such webhook")
    return JSON({"items": letters})
