"""Parameters no endpoint can use are a 400 before any endpoint sees them: control characters.

A NUL (``%00``) cannot be stored in PostgreSQL text, so a ``?dataset=`` or a ``/datasets/{name}``
holding one was an error of the database (a 500) wherever it reached a query; no name, option
or id of this API holds a control character either. So every request whose path, or any query
parameter's name or value (percent-decoded, as the endpoints read them), holds one is answered
400 here, once for every endpoint. A tab is let through: ``?delimiter=%09`` is one.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from ingestro.api.problems import problem_response

#: C0 controls but the tab, and DEL.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def unusable_parameter(scope: Scope) -> str | None:
    """What makes the request's path or query unusable, or None."""
    if found := CONTROL.search(scope.get("path", "")):
        return f"the path holds a control character (U+{ord(found.group()):04X})"
    # As starlette's QueryParams reads them, so the check sees what the endpoints see.
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if found := CONTROL.search(name + value):
            shown = CONTROL.sub("", name)[:50]
            return f"query parameter {shown!r} holds a control character (U+{ord(found.group()):04X})"
    return None


class RefuseControlCharacters:
    """ASGI middleware: 400 problem+json for a path or query holding a control character (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (problem := unusable_parameter(scope)):
            await problem_response(400, "Bad Request", problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)
