"""Cursor pagination shared by every list endpoint: ``?limit=&cursor=``, a ``next_cursor`` and a Link header."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import datetime
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


#: The largest value of a PostgreSQL bigint.
_BIGINT = (1 << 63) - 1


def text(value: Any) -> str:
    """A cursor's text part: a string PostgreSQL can hold (no NUL) and no other control character."""
    if not isinstance(value, str) or any(ord(char) < 0x20 or char == "\x7f" for char in value):
        raise ValueError(value)
    return value


def bigint(value: Any) -> int:
    """A cursor's number part: an integer a bigint holds."""
    if isinstance(value, bool) or not isinstance(value, int) or not -_BIGINT - 1 <= value <= _BIGINT:
        raise ValueError(value)
    return value


def moment(value: Any) -> datetime:
    """A cursor's time part: ISO 8601 with a zone."""
    found = datetime.fromisoformat(text(value))
    if found.tzinfo is None:
        raise ValueError(value)
    return found


def uuid_part(value: Any) -> uuid.UUID:
    return uuid.UUID(text(value))


def cursor_of(request: Request, *parts: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The position after which the page starts, each of its ``parts`` read by its converter; None: the first page.

    A cursor this API did not give out (not base64 of a JSON list of as many parts, each as its converter
    wants) is a 400, never an error from the database.
    """
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        if not isinstance(value, list) or len(value) != len(parts):
            raise ValueError(value)
        return tuple(part(item) for part, item in zip(parts, value, strict=True))
    except (ValueError, TypeError, OverflowError):  # orjson.JSONDecodeError and binascii.Error are ValueErrors
        raise Problem(400, "Bad Request", "the cursor is not one this API gave out") from None


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
