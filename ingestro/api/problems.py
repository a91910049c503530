"""RFC 9457 problem details: every error the API answers is ``application/problem+json``."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
import redis.exceptions
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ingestro.streams.outages import is_outage, refuses_writes

log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}


def problem_response(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json", headers=headers)


async def on_problem(_request: Request, error: Exception) -> Response:
    assert isinstance(error, Problem)
    return problem_response(error.status, error.title, error.detail, error.headers)


async def on_http_exception(_request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return problem_response(error.status_code, _title(error.status_code), str(error.detail), dict(error.headers or {}))


async def on_unexpected(_request: Request, error: Exception) -> Response:
    if is_outage(error):
        return _unavailable(error)
    return problem_response(500, "Internal Server Error", "an unexpected error occurred; it has been logged")


async def on_server_error(request: Request, error: Exception) -> Response:
    """A Redis, PostgreSQL or socket error: during an outage a 503, logged as one line, not a traceback."""
    if not is_outage(error):
        raise error  # on to on_unexpected: a 500, logged with its traceback
    log.warning(
        "answered 503: a backing server is unreachable or refuses writes",
        extra={"path": request.url.path, "error": f"{type(error).__name__}: {error}"},
    )
    return _unavailable(error)


def _unavailable(error: Exception) -> Response:
    reason = "Redis refuses writes (full, or read-only)" if refuses_writes(error) else "a backing server is unreachable"
    return problem_response(503, "Service Unavailable", f"{reason}; retry shortly", {"Retry-After": "5"})


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


#: Starlette answers Exception (its 500 handler) and then raises the error again, for the server to log
#: its traceback; the errors an outage raises are answered before that, as what they are.
EXCEPTION_HANDLERS = {
    Problem: on_problem,
    HTTPException: on_http_exception,
    redis.exceptions.RedisError: on_server_error,
    asyncpg.PostgresError: on_server_error,
    asyncpg.InterfaceError: on_server_error,
    OSError: on_server_error,
    Exception: on_unexpected,
}
