"""The one codec between events and Redis stream entries.

An entry has three fields: ``type`` (the event's type name), ``v`` (its schema
version) and ``data`` (the event's attributes as JSON, via cattrs and orjson).

Row batches (RowsAccepted, RowsRejected: nearly all of Redis's memory) are written in
version 2: their JSON compressed with zstd and, for accepted rows, each row's values
positional, in the order of the ``fields`` named once per batch. Entries of version 1
(plain JSON, values keyed by field name) still decode, so an upgrade needs no replay.
zstd rather than lz4: on generated contacts, zstd (level 3) stores ~50 bytes per row
against lz4's ~95 (the CSV line is ~66), for ~1.5 µs more CPU per row to compress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, overload

import attrs
import orjson
import zstandard
from cattrs.preconf.orjson import make_converter

from ingestro.domain.events import EVENT_TYPES, AcceptedRow, Event, RowsAccepted, RowsRejected

_converter = make_converter()
# Rows travel as compact arrays: a batch of 500 then carries no repeated attribute
# names, and (un)structuring skips cattrs' per-attribute machinery on the hot path.
_ROWS = Sequence[AcceptedRow]
_converter.register_unstructure_hook_func(lambda kind: kind == _ROWS, lambda rows: [list(row) for row in rows])
_converter.register_structure_hook_func(
    lambda kind: kind == _ROWS, lambda rows, _: [AcceptedRow._make(row) for row in rows]
)
_BY_NAME: dict[str, type[Event]] = {cls.type_name: cls for cls in EVENT_TYPES}
#: zstd's default level: level 1 saves ~0.4 µs per row for ~1 byte more; higher levels cost 3x the CPU for less.
_ZSTD_LEVEL = 3
#: The largest decompressed payload accepted: far above any batch the parser writes (rows are bounded
#: by INGESTRO_MAX_ROW_CHARS), so a corrupt entry cannot make a consumer allocate without bound.
_MAX_PAYLOAD_BYTES = 1024**3

EntryFields = dict[bytes, bytes]


class UnknownEvent(ValueError):
    """An entry whose type or version this code does not know."""


def encode(event: Event) -> dict[str, bytes]:
    """Return the stream-entry fields for ``event``, in the current version of its type."""
    if isinstance(event, RowsAccepted):
        data = zstandard.compress(orjson.dumps(_positional(event)), _ZSTD_LEVEL)
    elif isinstance(event, RowsRejected):
        data = zstandard.compress(orjson.dumps(_converter.unstructure(event)), _ZSTD_LEVEL)
    else:
        data = orjson.dumps(_converter.unstructure(event))
    return {"type": event.type_name.encode(), "v": str(event.version).encode(), "data": data}


def decode(fields: EntryFields) -> Event:
    """Rebuild the event stored in a stream entry (of any version still read); raise ``UnknownEvent`` if it is not
    one of ours."""
    name = fields.get(b"type", b"").decode()
    cls = _BY_NAME.get(name)
    if cls is None:
        raise UnknownEvent(f"unknown event type {name!r}")
    version = fields.get(b"v", b"").decode()
    if version == str(cls.version) and cls in (RowsAccepted, RowsRejected):
        data: Any = orjson.loads(_decompress(fields[b"data"]))
        return _from_positional(data) if cls is RowsAccepted else _converter.structure(data, cls)
    if version == "1":  # every type's first version: plain JSON
        return _converter.structure(orjson.loads(fields[b"data"]), cls)
    raise UnknownEvent(f"{name} version {version} is not supported (expected {cls.version})")


def payload_json(fields: EntryFields) -> bytes:
    """The ``data`` of an entry as JSON text, decompressed if it is a compressed row batch; for showing an entry
    to people (a dead letter's details); as it is when it does not decompress. Version 2 accepted rows stay
    positional, with their ``fields``."""
    data = fields.get(b"data", b"")
    if fields.get(b"v") == b"2" and fields.get(b"type") in (b"RowsAccepted", b"RowsRejected"):
        try:
            return _decompress(data)
        except UnknownEvent:
            return data
    return data


def event_type(fields: EntryFields) -> str:
    """The type name of an entry, without decoding its payload."""
    return fields.get(b"type", b"").decode()


def _decompress(data: bytes) -> bytes:
    try:
        return zstandard.decompress(data, max_output_size=_MAX_PAYLOAD_BYTES)
    except zstandard.ZstdError as error:
        raise UnknownEvent(f"a compressed payload that does not decompress: {error}") from None


def _positional(event: RowsAccepted) -> dict[str, Any]:
    """A RowsAccepted as JSON-ready values, each row ``[line, content_hash, values]``: its values in the order of the
    batch's ``fields`` (the first row's), or, for a row with other fields than the first (rare: kept unknown
    columns), as an object."""
    data: dict[str, Any] = _converter.unstructure(attrs.evolve(event, rows=[]))
    names = tuple(event.rows[0].values) if event.rows else ()
    keys = dict.fromkeys(names).keys()
    values_of: Callable[[dict[str, Any]], Any] = (
        itemgetter(*names) if len(names) > 1 else (lambda values: tuple(values[n] for n in names))
    )
    data["fields"] = names
    data["rows"] = [
        (row.line, row.content_hash, values_of(row.values) if row.values.keys() == keys else row.values)
        for row in event.rows
    ]
    return data


def _from_positional(data: dict[str, Any]) -> RowsAccepted:
    rows = PositionalRows(tuple(data.pop("fields")), data.pop("rows"))
    return attrs.evolve(_converter.structure(data | {"rows": []}, RowsAccepted), rows=rows)


class PositionalRows(Sequence[AcceptedRow]):
    """A decoded batch's rows as they were stored: each ``[line, content_hash, values]``, its values in the
    order of ``names`` (a list) or, for a row with other fields, keyed by name (a dict).

    An AcceptedRow (and its values' dict) is made only when a row is read: the data projection reads
    ``stored`` instead, which saves it about a third of its CPU per row.
    """

    __slots__ = ("names", "stored")

    def __init__(self, names: tuple[str, ...], stored: list[list[Any]]) -> None:
        self.names = names
        self.stored = stored

    def _row(self, row: list[Any]) -> AcceptedRow:
        line, content_hash, values = row
        return AcceptedRow(
            line, content_hash, dict(zip(self.names, values, strict=True)) if type(values) is list else values
        )

    def __len__(self) -> int:
        return len(self.stored)

    @overload
    def __getitem__(self, index: int) -> AcceptedRow: ...
    @overload
    def __getitem__(self, index: slice) -> list[AcceptedRow]: ...
    def __getitem__(self, index: int | slice) -> AcceptedRow | list[AcceptedRow]:
        if isinstance(index, slice):
            return list(map(self._row, self.stored[index]))
        return self._row(self.stored[index])

    def __iter__(self) -> Iterator[AcceptedRow]:
        return map(self._row, self.stored)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))
