"""The web console: ``GET /`` is its page, ``/console/...`` its scripts and styles, all package data.

A static app (plain ES modules and CSS in ``ingestro/api/static/``, no build step, nothing
from the network) that calls this same API with the key the user pastes, sent as
``Authorization: Bearer`` only. Every console response carries a Content-Security-Policy
that allows scripts, styles and connections to this origin only (no inline script or
style, no framing), ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

from importlib import resources

from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Where the console's files are, beside this module.
ASSETS = resources.files(__package__) / "static"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The page holds no data (the scripts fetch it), but a stale script after an upgrade would confuse.
    "Cache-Control": "no-cache",
}


class _Secured:
    """An ASGI app whose responses all carry ``SECURITY_HEADERS``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", []) if name != b"cache-control"]
                headers += [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secured)


def console_routes() -> list[Route | Mount]:
    """``/`` (the console's one page; its views are chosen by the URL's fragment, ``#/jobs/ID``) and
    ``/console/...`` (its scripts and styles), with the console's security headers."""
    page = (ASSETS / "index.html").read_bytes()  # read once: no file I/O on the event loop per request

    async def console_page(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(page, media_type="text/html; charset=utf-8")(scope, receive, send)

    with resources.as_file(ASSETS) as directory:  # a plain directory when installed from a wheel or editable
        assets = StaticFiles(directory=directory, follow_symlink=False)
    return [
        Route("/", _Secured(console_page), methods=["GET"]),
        Mount("/console", app=_Secured(assets), name="console"),
    ]
