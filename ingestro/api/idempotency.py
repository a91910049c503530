"""``Idempotency-Key`` on ``POST /upload`` (IETF draft-ietf-httpapi-idempotency-key-header).

The first request with a key claims it in Redis as *receiving*; once its job is announced,
the key holds the request's fingerprint and the response body, for ``INGESTRO_IDEMPOTENCY_TTL_S``
from then. A later request with the key is answered from it: the same fingerprint gets the
original job (200, the same body), another one a 422; while the first is still being received,
409. Keys are per API key (per caller), so two clients cannot collide.

The fingerprint is the file's SHA-256 with the query string, not the raw body: a multipart body
of the same file differs by its boundary from one send to the next.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import orjson
import redis.asyncio as aioredis
from starlette.requests import Request

from ingestro.api.auth import Caller
from ingestro.api.problems import Problem
from ingestro.streams.names import idempotency_key

HEADER = "idempotency-key"
MAX_LENGTH = 255
_RECEIVING = orjson.dumps({"state": "receiving"})


@attrs.frozen
class Outcome:
    """A key's completed upload: what it was sent with, and what it was answered."""

    fingerprint: str
    body: dict[str, Any]


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key, None without one; a 400 when it is not 1 to 255 visible ASCII characters."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if key.startswith('"') and key.endswith('"') and len(key) >= 2:  # sent as a structured-field string
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_LENGTH or not all("!" <= ch <= "~" for ch in key):
        raise Problem(400, "Bad Request", f"Idempotency-Key must be 1 to {MAX_LENGTH} visible ASCII characters")
    return key


def fingerprint(request: Request, sha256: str) -> str:
    query = sorted(request.query_params.multi_items())
    return hashlib.sha256(orjson.dumps([sha256, query])).hexdigest()


def _name(caller: Caller, key: str) -> str:
    return idempotency_key(f"{caller.tenant}:{caller.key_id or '-'}", key)


async def claim(redis: aioredis.Redis, caller: Caller, key: str, ttl_s: int) -> Outcome | None:
    """Claim ``key`` for a new upload (None), or the outcome of the upload that had it; 409 while that one is received.

    The claim lasts ``ttl_s`` too, so that the key of an API process that died mid-upload frees itself.
    """
    name = _name(caller, key)
    while True:
        if await redis.set(name, _RECEIVING, nx=True, ex=ttl_s):
            return None
        stored = await redis.get(name)
        if stored is None:
            continue  # it expired between the two calls: claim it again
        record = orjson.loads(stored)
        if record["state"] == "receiving":
            raise Problem(
                409,
                "Conflict",
                "an upload with this Idempotency-Key is still being received; retry once it is answered",
                {"Retry-After": "1"},
            )
        return Outcome(record["fingerprint"], record["body"])


async def complete(redis: aioredis.Redis, caller: Caller, key: str, ttl_s: int, outcome: Outcome) -> None:
    record = {"state": "done", "fingerprint": outcome.fingerprint, "body": outcome.body}
    await redis.set(_name(caller, key), orjson.dumps(record), ex=ttl_s)


async def release(redis: aioredis.Redis, caller: Caller, key: str) -> None:
    """Free a claimed key whose upload was refused or failed: the client may send it again."""
    await redis.delete(_name(caller, key))


def replay(previous: Outcome, request_fingerprint: str) -> dict[str, Any]:
    """The original response body for a repeated request; 422 when the key was used for other content."""
    if previous.fingerprint != request_fingerprint:
        raise Problem(
            422,
            "Unprocessable Content",
            "this Idempotency-Key was used for a different upload (another file or other options)",
        )
    return previous.body
