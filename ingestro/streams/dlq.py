"""The dead-letter stream: the record the runtime writes there, and listing, redriving and purging it.

A dead letter is one entry of ``ingestro:dlq``: the failure (source stream, entry
id, group, consumer, deliveries, error type and message, first and last failure
times) and the original entry's fields, each name prefixed ``entry.``.

Redrive appends the original fields to the source stream again, as a new entry,
and only then deletes the dead letter: a crash in between leaves both (the entry
is handled twice, which the idempotent projections make harmless), never neither.
Every group reading the source stream sees the redriven entry, not only the group
that failed it; a group that had applied it already changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import redis.asyncio as aioredis

from ingestro.domain import codec
from ingestro.domain.events import Event
from ingestro.streams import replication
from ingestro.streams.names import DLQ_STREAM

#: Prefix of the original entry's field names inside a dead letter.
ENTRY_PREFIX = b"entry."
_FAILURE_FIELDS = (
    "stream",
    "entry_id",
    "group",
    "consumer",
    "deliveries",
    "error_type",
    "error_message",
    "first_failure",
    "last_failure",
)
_PAGE = 100
_ID = re.compile(r"[0-9]+-[0-9]+")

Fields = dict[bytes, bytes]


@attrs.frozen
class DeadLetter:
    """An entry that ``group`` failed to handle ``deliveries`` times, with why."""

    stream: str
    entry_id: str
    group: str
    consumer: str
    deliveries: int
    error_type: str
    error_message: str
    first_failure: str
    last_failure: str
    #: The original entry's fields, as they were on ``stream``.
    fields: Fields

    def to_fields(self) -> Fields:
        record = {name.encode(): str(getattr(self, name)).encode() for name in _FAILURE_FIELDS}
        record.update({ENTRY_PREFIX + name: value for name, value in self.fields.items()})
        return record

    @classmethod
    def from_fields(cls, fields: Fields) -> DeadLetter:
        text = {name: fields.get(name.encode(), b"").decode(errors="replace") for name in _FAILURE_FIELDS}
        deliveries = text.pop("deliveries")
        original = {name[len(ENTRY_PREFIX) :]: value for name, value in fields.items() if name.startswith(ENTRY_PREFIX)}
        return cls(**text, deliveries=int(deliveries) if deliveries.isdigit() else 0, fields=original)

    def event(self) -> Event | None:
        """The original entry's event, or None when it is not one this code can decode."""
        try:
            return codec.decode(self.fields)
        except Exception:  # whatever broke the entry may break its decoding too
            return None

    def describe(self) -> str:
        """What failed where, and why, in one line."""
        what = codec.event_type(self.fields) or "an entry"
        seq = getattr(self.event(), "seq", None)
        return (
            f"group {self.group} gave up on {what}{'' if seq is None else f' #{seq}'} ({self.stream} {self.entry_id})"
            f" after {self.deliveries} deliveries: {self.error_type}: {self.error_message}"
        )


@attrs.frozen
class DlqEntry:
    """A dead letter and its id in the dead-letter stream."""

    id: str
    letter: DeadLetter


def is_id(text: str) -> bool:
    """Whether ``text`` has the form of a stream entry id (``MILLISECONDS-SEQUENCE``)."""
    return _ID.fullmatch(text) is not None


def summary(entry: DlqEntry) -> dict[str, Any]:
    """The dead letter as JSON-ready values, naming the original event and its job when it decodes."""
    letter = entry.letter
    event = letter.event()
    return {
        "id": entry.id,
        **{name: getattr(letter, name) for name in _FAILURE_FIELDS},
        "event_type": codec.event_type(letter.fields) or None,
        "job_id": getattr(event, "job_id", None),
        "seq": getattr(event, "seq", None),
    }


def details(entry: DlqEntry) -> dict[str, Any]:
    """``summary`` plus the original entry's fields as text, its ``data`` as JSON (decompressed, for a row batch)."""
    shown = dict(entry.letter.fields)
    if b"data" in shown:
        shown[b"data"] = codec.payload_json(shown)
    fields = {name.decode(errors="replace"): value.decode(errors="replace") for name, value in shown.items()}
    return summary(entry) | {"fields": fields}


async def page(redis: aioredis.Redis, after: str | None = None, count: int = _PAGE) -> list[DlqEntry]:
    """Up to ``count`` dead letters, oldest first, from just after id ``after``."""
    items: Any = await redis.xrange(DLQ_STREAM, min=f"({after}" if after else "-", max="+", count=count)
    return [DlqEntry(entry_id.decode(), DeadLetter.from_fields(fields)) for entry_id, fields in items]


async def get(redis: aioredis.Redis, dlq_id: str) -> DlqEntry | None:
    if not is_id(dlq_id):
        return None
    items: Any = await redis.xrange(DLQ_STREAM, min=dlq_id, max=dlq_id, count=1)
    return DlqEntry(dlq_id, DeadLetter.from_fields(items[0][1])) if items else None


async def redrive(redis: aioredis.Redis, dlq_id: str) -> str | None:
    """Put the entry back on its source stream; return its new id, or None if there is no such dead letter."""
    entry = await get(redis, dlq_id)
    if entry is None:
        return None
    # Append first (on the required replicas), delete second: a crash or failover in between duplicates, never
    # loses.
    new_id = await replication.append(redis, entry.letter.stream, entry.letter.fields)
    await redis.xdel(DLQ_STREAM, dlq_id)
    return new_id


async def purge(redis: aioredis.Redis, dlq_id: str) -> bool:
    """Delete one dead letter for good; False if there was none with that id."""
    return is_id(dlq_id) and bool(await redis.xdel(DLQ_STREAM, dlq_id))


async def every_id(redis: aioredis.Redis) -> list[str]:
    """The ids of the dead letters there are now: what ``--all`` acts on, so later ones are left alone."""
    ids: list[str] = []
    while batch := await page(redis, ids[-1] if ids else None):
        ids.extend(entry.id for entry in batch)
    return ids
