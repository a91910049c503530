"""Standard Webhooks signatures (https://www.standardwebhooks.com): how a receiver knows a delivery is ours.

A secret is ``whsec_`` and the base64 of 32 random bytes. A delivery carries ``webhook-id`` (the event's stable
id: the same on every retry, for receivers to de-duplicate), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256, keyed by the secret's bytes, of
``"{id}.{timestamp}.{body}"``; during a secret rotation, one such signature per secret, space-separated. The README's
receiver example is ``verify``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence

PREFIX = "whsec_"
#: How far a delivery's timestamp may be from the receiver's clock (replayed deliveries are refused).
TOLERANCE_S = 300


class InvalidSignature(ValueError):
    """The delivery is not signed by any of the secrets, or its timestamp is too far off."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` for one secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def headers(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a delivery signed by each of ``secrets_`` (newest first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(secret, message_id, timestamp, body) for secret in secrets_),
    }


def verify(secret: str, received: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """What a receiver does: InvalidSignature unless one ``v1`` signature of ``received`` is ``secret``'s and the
    timestamp is within ``TOLERANCE_S`` of ``now``. (Header names as lower case.)"""
    message_id, timestamp = received["webhook-id"], received["webhook-timestamp"]
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_S:
        raise InvalidSignature("timestamp too far from now")
    expected = signature(secret, message_id, int(timestamp), body)
    if not any(hmac.compare_digest(expected, given) for given in received["webhook-signature"].split(" ")):
        raise InvalidSignature("no matching signature")
