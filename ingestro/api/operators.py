"""What operators act on over HTTP (admin keys): ``POST /dlq/{id}/redrive`` and ``GET /streams``.

Redrive is ``ingestro dlq redrive ID`` (``ingestro.streams.dlq.redrive``: append the
original entry to its source stream, then delete the dead letter). ``GET /streams`` is
``ingestro streams`` as JSON: each stream's length and where each consumer group stands
(``ingestro.streams.state``, the reading the metrics' backlog gauges use).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.context import AppContext
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.services.consumer_groups import group_stream_keys
from ingestro.streams import dlq
from ingestro.streams.collector import streams_read
from ingestro.streams.state import read_groups


async def redrive_dead_letter(request: Request) -> Response:
    """200 with the dead letter's source stream and the id it was appended as; 404 when there is no such one."""
    context: AppContext = request.app.state.context
    dlq_id = request.path_params["dlq_id"]
    entry = await dlq.get(context.redis, dlq_id)
    new_id = None if entry is None else await dlq.redrive(context.redis, dlq_id)
    if entry is None or new_id is None:
        raise Problem(404, "Not Found", f"no dead letter {dlq_id!r}")
    return JSON({"id": dlq_id, "stream": entry.letter.stream, "redriven_as": new_id})


async def stream_backlog(request: Request) -> Response:
    """Every stream (the dead-letter stream included), its length, and each group's lag, pending and consumers."""
    context: AppContext = request.app.state.context
    streams: list[dict[str, Any]] = []
    for stream in streams_read(group_stream_keys(context.settings.partitions)):
        groups = await read_groups(context.redis, stream)
        streams.append(
            {
                "stream": stream,
                "length": await context.redis.xlen(stream),
                "groups": [
                    {
                        "group": group.name,
                        "lag": group.lag,
                        "pending": group.pending,
                        "oldest_pending_idle_s": group.oldest_pending_idle_s,
                        "consumers": group.consumers,
                        "last_delivered_id": group.last_delivered_id,
                    }
                    for group in groups
                ],
            }
        )
    return JSON({"streams": streams})
