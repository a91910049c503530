"""JSON responses encoded with orjson (dates, datetimes and UUIDs included), and event streams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send


def _exact(value: Any) -> str:
    """Decimals (numeric columns) as their exact text: a JSON number would pass through a float.

    And UUIDs as their canonical text: orjson writes ``uuid.UUID`` itself, but asyncpg gives uuid
    columns as a subclass of its own, which orjson refuses.
    """
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_exact)


class EventStream(StreamingResponse):
    """``text/event-stream`` from an async generator of encoded events, closed however the response ends.

    Whether the stream ran out, the client went away (its send cancelled or failed) or the server
    stops, the generator is closed (its ``finally`` runs: connections it opened are closed) and
    then ``on_close`` is called, exactly once.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None], on_close: Callable[[], None]) -> None:
        # no-cache: a proxy must not hold it back; X-Accel-Buffering: nginx must not buffer it.
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = events
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._events.aclose()
            finally:
                self._on_close()


def server_sent_event(event: str, data: Any) -> bytes:
    """One event of a ``text/event-stream``: its name, and its data as one line of JSON."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


#: A comment line: ignored by clients, it keeps proxies from closing an idle stream.
KEEPALIVE = b": keepalive\n\n"
