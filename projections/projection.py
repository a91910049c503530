"""The Projection protocol: what every projection is to the process wiring, replay and the operations commands.

A projection is a consumer group that turns the events of its streams into tables it owns. Adding one
means writing its module (a class that satisfies ``Projection``) and listing it in
``projections.registry``: the consumers, replay, retention, the metrics, ``ingestro streams`` and the
CLI's choices all take it from there.

Live, the runtime hands it groups of entries (``handle_group``): it applies them in one transaction,
then announces what it did (``announces``) once committed. A replay builds its tables again in shadow
tables from the same entries, through ``apply_entries``, which announces nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, Self

import asyncpg
import redis.asyncio as aioredis

from ingestro.domain.events import Event
from ingestro.streams.publisher import publish_all
from ingestro.streams.runtime import Entry


class Projection(Protocol):
    """A projection: its name, the streams it reads, the tables it owns, how it applies entries and what it tells."""

    #: Its consumer group; also its name in ``applied_batches`` and in the BatchApplied it announces.
    name: ClassVar[str]
    #: The streams it reads, in the order a replay reads them.
    streams: ClassVar[tuple[str, ...]]
    #: The events it publishes after each commit.
    announces: ClassVar[tuple[type[Event], ...]]
    #: Tables it shares with other projections, holding its rows where ``projection`` names it (replay swaps those
    #: rows, and locks these tables first, as the live projection does).
    shared_tables: ClassVar[tuple[str, ...]]
    #: What a replay loses when retention trimmed events its live tables hold (said when the replay is refused).
    facts: ClassVar[str]

    pool: asyncpg.Pool
    #: Where it announces; None: it announces nothing (a replay, some tests).
    redis: aioredis.Redis | None

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis | None = None) -> None: ...

    @classmethod
    def in_shadow(cls, pool: asyncpg.Pool, schema: str) -> Self:
        """The projection writing into a replay's shadow tables in ``schema``, announcing nothing. ``pool``'s
        connections have ``schema`` first in their ``search_path``, for the tables it names unqualified."""

    async def __call__(self, entry: Entry) -> None:
        """Apply one entry and announce (the runtime's handler for an entry retried alone)."""

    async def handle_group(self, entries: list[Entry]) -> None:
        """Apply the entries (in one transaction, unless some must go alone) and announce, each after its commit."""

    async def apply_entries(self, entries: list[Entry]) -> Sequence[Event]:
        """Apply the entries as ``handle_group`` does and return what it would announce, announcing nothing."""

    async def tables(self) -> tuple[str, ...]:
        """The tables it owns whole, in the order it writes them (so that a replay locks them alike)."""

    async def restore_trimmed(self, stream: str, live: asyncpg.Connection) -> None:
        """After a replay read ``stream``: apply what retention trimmed from it that the live tables (read through
        ``live``, the replay's connection) still record. Most projections can restore nothing."""

    async def lost(self, live: asyncpg.Connection, schema: str) -> dict[str, int]:
        """What its live tables hold that its tables in ``schema`` (a replay's shadows) lack, counted per job."""


async def announce(redis: aioredis.Redis | None, events: Sequence[Event]) -> None:
    """Publish what a projection announces, once its transaction committed; without a Redis client, nothing."""
    if redis is not None and events:
        await publish_all(redis, events)
