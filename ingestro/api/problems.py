"""RFC 9457 problem details: every error the API answers is ``application/problem+json``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ingestro.streams.outages import is_outage


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
        return problem_response(
            503, "Service Unavailable", "a backing server is unreachable; retry shortly", {"Retry-After": "5"}
        )
    return problem_response(500, "Internal Server Error", "an unexpected error occurred; it has been logged")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


EXCEPTION_HANDLERS = {Problem: on_problem, HTTPException: on_http_exception, Exception: on_unexpected}
