"""Cursor pagination shared by every list endpoint: ``?limit=&cursor=``, a ``next_cursor`` and a Link header."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from starlette.datastructures import URL
from starlette.requests import Request

from ingestro.api.problems import Problem

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def limit_of(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise Problem(400, "Bad Request", f"limit must be an integer, got {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, "Bad Request", f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def cursor_of(request: Request) -> list[Any] | None:
    """The position after which the page starts, or None for the first page."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise Problem(400, "Bad Request", "the cursor is not one this API gave out") from None
    if not isinstance(value, list):
        raise Problem(400, "Bad Request", "the cursor is not one this API gave out")
    return value


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def page(
    request: Request, items: list[dict[str, Any]], limit: int, position: list[Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The page body and headers; ``position`` is the last item's sort key when more items may follow."""
    next_cursor = encode_cursor(position) if position is not None and len(items) == limit else None
    headers: dict[str, str] = {}
    if next_cursor:
        next_url: URL = request.url.include_query_params(cursor=next_cursor, limit=limit)
        headers["Link"] = f'<{next_url.path}?{next_url.query}>; rel="next"'
    return {"items": items, "next_cursor": next_cursor}, headers
