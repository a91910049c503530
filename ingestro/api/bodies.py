"""Request bodies: their media type, and the body itself read with a bound as it streams in."""

from __future__ import annotations

from starlette.requests import Request

from ingestro.api.problems import Problem


def media_type(request: Request, default: str = "") -> str:
    """The request's media type, lower case and without parameters; ``default`` when it has no Content-Type."""
    return request.headers.get("content-type", default).split(";")[0].strip().lower()


async def bounded_body(request: Request, max_bytes: int, too_large: str) -> bytes:
    """The request's body, read as it streams in: past ``max_bytes``, a 413 whose detail is ``too_large``."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise Problem(413, "Content Too Large", too_large)
    return bytes(body)
