"""``GET /dlq``: dead-lettered entries, oldest first. Redrive: ``POST /dlq/{id}/redrive`` (``ingestro.api.operators``)
or ``ingestro dlq``; purge with ``ingestro dlq``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.context import AppContext
from ingestro.api.pagination import cursor_of, limit_of, page
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.streams import dlq


async def list_dead_letters(request: Request) -> Response:
    """Each dead letter's failure and the job it belongs to, without the original entry's payload."""
    context: AppContext = request.app.state.context
    limit = limit_of(request)
    after = cursor_of(request)
    after_id = after[0] if after else None
    if after_id is not None and not (isinstance(after_id, str) and dlq.is_id(after_id)):
        raise Problem(400, "Bad Request", "the cursor is not one this API gave out")
    entries = await dlq.page(context.redis, after_id, limit)
    position = [entries[-1].id] if entries else None
    body, headers = page(request, [dlq.summary(entry) for entry in entries], limit, position)
    return JSON(body, headers=headers)
