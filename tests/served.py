"""A test stack's API served over real HTTP on loopback, for what an in-process transport cannot show.

httpx's ASGI transport hands back a response only once the app finished it, so a stream that
never ends (``GET /jobs/{id}/events``) and a client going away need a real server and socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

from tests.stack import Stack


def app_of(stack: Stack) -> ASGIApp:
    """The app behind the stack's client (its lifespan is entered already)."""
    app: ASGIApp = stack.client._transport.app  # type: ignore[attr-defined]
    return app


@contextlib.asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
