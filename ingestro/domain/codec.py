"""The one codec between events and Redis stream entries.

An entry has three fields: ``type`` (the event's type name), ``v`` (its schema
version) and ``data`` (the event's attributes as JSON, via cattrs and orjson).
"""

from __future__ import annotations

from typing import Any

import orjson
from cattrs.preconf.orjson import make_converter

from ingestro.domain.events import EVENT_TYPES, AcceptedRow, Event

_converter = make_converter()
# Rows travel as compact arrays: a batch of 500 then carries no repeated attribute
# names, and (un)structuring skips cattrs' per-attribute machinery on the hot path.
_ROWS = list[AcceptedRow]
_converter.register_unstructure_hook_func(lambda kind: kind == _ROWS, lambda rows: [list(row) for row in rows])
_converter.register_structure_hook_func(
    lambda kind: kind == _ROWS, lambda rows, _: [AcceptedRow._make(row) for row in rows]
)
_BY_NAME: dict[str, type[Event]] = {cls.type_name: cls for cls in EVENT_TYPES}

EntryFields = dict[bytes, bytes]


class UnknownEvent(ValueError):
    """An entry whose type or version this code does not know."""


def encode(event: Event) -> dict[str, bytes]:
    """Return the stream-entry fields for ``event``."""
    return {
        "type": event.type_name.encode(),
        "v": str(event.version).encode(),
        "data": orjson.dumps(_converter.unstructure(event)),
    }


def decode(fields: EntryFields) -> Event:
    """Rebuild the event stored in a stream entry; raise ``UnknownEvent`` if it is not one of ours."""
    name = fields.get(b"type", b"").decode()
    cls = _BY_NAME.get(name)
    if cls is None:
        raise UnknownEvent(f"unknown event type {name!r}")
    version = fields.get(b"v", b"").decode()
    if version != str(cls.version):
        raise UnknownEvent(f"{name} version {version} is not supported (expected {cls.version})")
    data: Any = orjson.loads(fields[b"data"])
    return _converter.structure(data, cls)


def event_type(fields: EntryFields) -> str:
    """The type name of an entry, without decoding its payload."""
    return fields.get(b"type", b"").decode()
