"""Request bodies that come too slowly are cut off: an idle timeout and a minimum average rate.

A client that declares a body and then sends it slowly, or not at all, would hold its request for
ever, and with it what the request holds (an upload's slot among its key's uploads at once, its
partial file). So every read of a request body waits at most ``idle_timeout_s`` for the client; and
once the body has taken ``idle_timeout_s`` seconds, it must keep up an average of ``min_rate`` bytes a
second: in all it may have kept the server waiting ``idle_timeout_s + received / min_rate`` seconds.
Only the time spent waiting for the client counts, never the time the server spends on what it
received (a slow disk or S3 is not the client's fault).

A body cut off raises ``BodyTooSlow`` (a 408 problem) from the endpoint's read, so each endpoint's own
cleanup runs as for any refused request: an upload gives back its slot and deletes its partial file.
The answer closes the connection, and the cut is logged as one line. A read made after the response
started (a stream that only watches for the client leaving) is told the client left instead. A client
that leaves before its body is complete is logged as one line too (there is nobody to answer).
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingestro.api.problems import Problem

log = logging.getLogger(__name__)


class BodyTooSlow(Problem):
    """408: the request body stalled, or came slower than the minimum rate."""

    def __init__(self, detail: str) -> None:
        super().__init__(408, "Request Timeout", detail, {"Connection": "close"})


class BodyDeadlines:
    """ASGI middleware holding every HTTP request's body to ``idle_timeout_s`` and ``min_rate`` (0: no rate)."""

    def __init__(self, app: ASGIApp, idle_timeout_s: float, min_rate: float) -> None:
        self.app = app
        self.idle_timeout_s = idle_timeout_s
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(scope, receive, self.idle_timeout_s, self.min_rate)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                body.responded = True
            await send(message)

        try:
            await self.app(scope, body.receive, sending)
        except ClientDisconnect:
            # The client left (or broke its framing) before its body was complete. The endpoint's read raised,
            # so it cleaned up as for any refusal; there is nobody left to answer: one line, no traceback.
            log.info(
                "request body cut off: the client went away",
                extra={"method": scope.get("method"), "path": scope.get("path"), "bytes_received": body.received},
            )


class _Body:
    """One request's body as the app reads it, within the deadlines."""

    def __init__(self, scope: Scope, receive: Receive, idle_timeout_s: float, min_rate: float) -> None:
        self.scope = scope
        self._receive = receive
        self.idle_timeout_s = idle_timeout_s
        self.min_rate = min_rate
        self.received = 0
        self.waited = 0.0  # seconds spent waiting for the client, over every read
        self.complete = False  # the whole body was read (or the client left): reads wait for nothing more
        self.cut = False
        self.responded = False

    async def receive(self) -> Message:
        if self.cut:
            return {"type": "http.disconnect"}
        if self.complete:
            return await self._receive()
        allowed = self.idle_timeout_s
        if self.min_rate > 0:
            allowed = min(allowed, self.idle_timeout_s + self.received / self.min_rate - self.waited)
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(allowed, 0.0)):
                message = await self._receive()
        except TimeoutError:
            self.waited += time.monotonic() - started
            return self._cut_off(stalled=allowed >= self.idle_timeout_s)
        self.waited += time.monotonic() - started
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True  # http.disconnect
        return message

    def _cut_off(self, *, stalled: bool) -> Message:
        self.cut = True
        if stalled:
            detail = f"the request body sent nothing for {self.idle_timeout_s:g} s (INGESTRO_BODY_IDLE_TIMEOUT_S)"
        else:
            detail = (
                f"the request body came slower than {self.min_rate:g} bytes/s on average (INGESTRO_BODY_MIN_RATE):"
                f" {self.received} bytes in {self.waited:.1f} s"
            )
        log.warning(
            "request body cut off",
            extra={
                "reason": detail,
                "method": self.scope.get("method"),
                "path": self.scope.get("path"),
                "bytes_received": self.received,
                "seconds_waited": round(self.waited, 3),
            },
        )
        if self.responded:
            return {"type": "http.disconnect"}
        raise BodyTooSlow(detail)
