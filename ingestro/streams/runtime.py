"""The one stream runtime every consumer runs: read, handle, ack, retry, reclaim, dead-letter.

A consumer is a group name, the streams it reads and a handler. The runtime:

- creates the consumer groups if missing (from the start of each stream);
- on start, handles its own pending entries first (what it held when it stopped);
- reads new entries with a blocking XREADGROUP and acks each entry only after its
  handler returned, i.e. after the handler's effects are durable;
- when a handler raises because Redis or PostgreSQL is unreachable, or Redis refuses
  writes (full at ``maxmemory``, a read-only replica: see ``ingestro.streams.outages``),
  retries the same entry in place with capped backoff, counting nothing toward
  dead-lettering, until the server is back;
- when a handler raises anything else, records the failure and leaves the entry
  pending; it is retried after an exponential backoff on its delivery count
  (capped below the visibility timeout, so its owner retries it before others);
- reclaims other consumers' entries idle longer than the visibility timeout with
  XAUTOCLAIM (a consumer that died or was scaled down);
- keeps the entries in hand (being handled, or waiting for a free handler) from
  being reclaimed by refreshing their idle time (XCLAIM JUSTID) every third of the
  visibility timeout, so a long handler is never reclaimed under its feet;
- drops pending entries deleted from the stream meanwhile (trimmed, purged, redriven);
- after ``max_deliveries`` deliveries writes the entry with its failure to the
  dead-letter stream, then acks it (DLQ first: a crash between them duplicates,
  never loses);
- on a clean stop, removes itself from the group only if it holds no pending entry.

**What a handler must not raise.** Retrying and dead-lettering are for errors that the
next delivery may not meet: the infrastructure's (a server unreachable or refusing
writes, a timeout, the upload storage failing). An error that every delivery of the
same entry would meet again, because it lies in the entry's data (a file that cannot
be read, a bad option, a dataset version that does not exist), is an outcome, not a
failure: the handler records it (the parser fails the job with the reason, on the first
delivery) and returns, so the entry is acked. Dead-lettering it would only park a job
as ``stalled`` behind a redrive that must fail again.

A consumer may also have a group handler: it takes up to ``group_size`` fresh
entries at once, typically to apply them in one database transaction. The
entries are acked together when it returns. When it raises for any reason other
than an outage, every entry of the group is handled again alone by the entry
handler, so one poison entry fails alone and its companions go on; retries,
reclaims and dead-lettering always go through the entry handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
import orjson
import redis.asyncio as aioredis
import redis.exceptions
from redis.crc import key_slot

from ingestro.metrics import (
    DEAD_LETTERED,
    ENTRIES_PROCESSED,
    ENTRY_HANDLING_SECONDS,
    RECLAIMS,
    REDELIVERIES,
)
from ingestro.streams import replication
from ingestro.streams.connections import text
from ingestro.streams.dlq import DeadLetter
from ingestro.streams.names import DLQ_STREAM, failures_key
from ingestro.streams.outages import is_outage, until_answered

log = logging.getLogger(__name__)

Fields = dict[bytes, bytes]

#: The shortest blocking read on one slot of several, while a consumer waits for new entries.
_MIN_SHARE_MS = 100


@attrs.frozen
class Entry:
    """One stream entry delivered to a consumer."""

    stream: str
    id: str
    fields: Fields
    #: How many times the entry has been delivered to the group, this delivery included.
    deliveries: int = 1


Handler = Callable[[Entry], Awaitable[None]]
GroupHandler = Callable[[list[Entry]], Awaitable[None]]


@attrs.frozen
class ConsumerSettings:
    block_ms: int = 2000
    read_count: int = 10
    #: Entries (or groups of entries) handled at once by this process.
    concurrency: int = 1
    #: Most fresh entries given to a group handler at once.
    group_size: int = 1
    #: With a group handler: when a read brings fewer entries than it may, wait this long and read
    #: again, so that groups fill up under load (a group's transaction has a fixed cost). 0: never.
    group_linger_ms: int = 0
    visibility_timeout_s: float = 60.0
    max_deliveries: int = 5
    retry_base_s: float = 1.0
    #: How often to look for entries to retry or reclaim.
    reclaim_interval_s: float = 1.0

    @property
    def retry_cap_s(self) -> float:
        return self.visibility_timeout_s / 2

    def retry_delay_s(self, deliveries: int) -> float:
        """Backoff before the next attempt of an entry delivered ``deliveries`` times."""
        return float(min(self.retry_base_s * 2 ** max(deliveries - 1, 0), self.retry_cap_s))


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@attrs.define
class Consumer:
    """Runs ``handler`` over the entries of ``streams`` as member ``name`` of ``group``."""

    redis: aioredis.Redis
    group: str
    streams: tuple[str, ...]
    name: str
    handler: Handler
    settings: ConsumerSettings = ConsumerSettings()
    group_handler: GroupHandler | None = None
    _in_flight: dict[tuple[str, str], Entry] = attrs.field(factory=dict, init=False)
    _stopping: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _next_slot: int = attrs.field(default=0, init=False)

    # ----------------------------------------------------------------- lifecycle

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set; then finish the entries in hand and return."""
        if stop is not None:
            self._stopping = stop
        await self._until_redis(self.ensure_groups)
        heartbeat_done = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(heartbeat_done))
        try:
            await self._handle_own_pending()
            next_reclaim = 0.0
            while not self._stopping.is_set():
                if time.monotonic() >= next_reclaim:
                    await self._guard(self._retry_and_reclaim)
                    next_reclaim = time.monotonic() + self.settings.reclaim_interval_s
                entries = await self._guard(self._read_new) or []
                await self._handle_all(entries)
        finally:
            # Told by an event, not cancel(): on Python 3.11 a cancellation landing as
            # redis-py finishes a send is lost (asyncio.wait_for), and the loop would beat on.
            heartbeat_done.set()
            await heartbeat
        await self._guard(self._leave_if_idle)

    async def ensure_groups(self) -> None:
        """Create this consumer's groups, reading from the start of each stream, if missing."""
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis.exceptions.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    async def _leave_if_idle(self) -> None:
        # Deleting a consumer drops its pending entries, so leave only with none.
        for stream in self.streams:
            info = await self.redis.xpending_range(stream, self.group, "-", "+", 1, consumername=self.name)
            if not info:
                await self.redis.xgroup_delconsumer(stream, self.group, self.name)

    # -------------------------------------------------------------------- reading

    async def _read_new(self) -> list[Entry]:
        entries = await self._read_fresh(self.settings.read_count, self.settings.block_ms)
        linger = self.settings.group_linger_ms
        if self.group_handler is not None and linger > 0 and 0 < len(entries) < self.settings.read_count:
            # Entries come in bursts (the parser pipelines its batches): the rest of one is moments away.
            await asyncio.sleep(linger / 1000)
            entries += await self._read_fresh(self.settings.read_count - len(entries), None)
        return entries

    async def _read_fresh(self, count: int, block_ms: int | None) -> list[Entry]:
        """New entries of every stream. One XREADGROUP per slot (Redis Cluster refuses one over several): first
        without blocking on every slot; when none had anything, a blocking read on the next slot in turn, for a
        share of ``block_ms``, so an idle consumer looks at every partition a few times per ``block_ms``."""
        slots = by_slot(self.streams)
        if len(slots) == 1:
            return await self._read_slot(slots[0], count, block_ms)
        replies = await asyncio.gather(*(self._read_slot(streams, count, None) for streams in slots))
        entries = [entry for reply in replies for entry in reply]
        if entries or block_ms is None:
            return entries
        self._next_slot = (self._next_slot + 1) % len(slots)
        share = max(block_ms // len(slots), min(block_ms, _MIN_SHARE_MS))
        return await self._read_slot(slots[self._next_slot], count, share)

    async def _read_slot(self, streams: tuple[str, ...], count: int, block_ms: int | None) -> list[Entry]:
        reply: Any = await self.redis.xreadgroup(
            self.group, self.name, dict.fromkeys(streams, ">"), count=count, block=block_ms
        )
        return [entry for stream, items in reply or [] for entry in self._entries(stream, items, deliveries=1)]

    async def _handle_own_pending(self) -> None:
        """Handle what this consumer held when it last stopped (its pending entries list)."""
        for stream in self.streams:
            after = "0"
            while not self._stopping.is_set():
                reply = await self._until_redis(
                    functools.partial(
                        self.redis.xreadgroup, self.group, self.name, {stream: after}, count=self.settings.read_count
                    )
                )
                items = reply[0][1] if reply else []
                if not items:
                    break
                after = text(items[-1][0])
                # An entry deleted from the stream while pending comes back with no fields.
                deleted = [text(entry_id) for entry_id, fields in items if not fields]
                if deleted:
                    await self._until_redis(functools.partial(self._drop_deleted, stream, deleted))
                live = [(entry_id, fields) for entry_id, fields in items if fields]
                counts = await self._until_redis(
                    functools.partial(self._delivery_counts, stream, [text(i) for i, _ in live])
                )
                await self._handle_all(
                    Entry(stream, text(entry_id), fields, counts.get(text(entry_id), 1)) for entry_id, fields in live
                )

    # ------------------------------------------------------ retrying and reclaiming

    async def _retry_and_reclaim(self) -> None:
        for stream in self.streams:
            await self._retry_own_failures(stream)
            await self._reclaim_stale(stream)

    async def _retry_own_failures(self, stream: str) -> None:
        """Claim again, after their backoff, the entries whose handler failed here."""
        min_idle_ms = int(self.settings.retry_base_s * 1000)
        pending: list[dict[str, Any]] = await self.redis.xpending_range(
            stream, self.group, "-", "+", 100, consumername=self.name, idle=min_idle_ms
        )
        due = [
            item
            for item in pending
            if (stream, text(item["message_id"])) not in self._in_flight
            and item["time_since_delivered"] >= self.settings.retry_delay_s(item["times_delivered"]) * 1000
        ]
        entries: list[Entry] = []
        for item in due:
            entry_id = text(item["message_id"])
            min_idle = int(self.settings.retry_delay_s(item["times_delivered"]) * 1000)
            # Redis drops an entry deleted from the stream from the pending list on XCLAIM.
            claimed = await self.redis.xclaim(stream, self.group, self.name, min_idle, [entry_id])
            entries.extend(self._entries(stream, claimed, deliveries=item["times_delivered"] + 1))
        await self._handle_all(entries)

    async def _reclaim_stale(self, stream: str) -> None:
        """XAUTOCLAIM entries idle past the visibility timeout, following the cursor until it wraps."""
        min_idle_ms = int(self.settings.visibility_timeout_s * 1000)
        cursor = "0-0"
        while not self._stopping.is_set():
            reply = await self.redis.xautoclaim(
                stream, self.group, self.name, min_idle_ms, start_id=cursor, count=self.settings.read_count
            )
            cursor, claimed = text(reply[0]), reply[1]
            # Redis 7 lists the pending entries it found deleted from the stream (and dropped them).
            deleted = [text(entry_id) for entry_id in (reply[2] if len(reply) > 2 else [])]
            if deleted:
                await self._drop_deleted(stream, deleted)
            if claimed:
                counts = await self._delivery_counts(stream, [text(entry_id) for entry_id, _ in claimed])
                entries = [
                    Entry(stream, text(entry_id), fields, counts.get(text(entry_id), 1))
                    for entry_id, fields in claimed
                    if fields
                ]
                log.info(
                    "reclaimed stale entries", extra={"stream": stream, "group": self.group, "count": len(entries)}
                )
                RECLAIMS.labels(self.group).inc(len(entries))
                await self._handle_all(entries)
            if cursor == "0-0":
                return

    async def _delivery_counts(self, stream: str, entry_ids: list[str]) -> dict[str, int]:
        # One XPENDING per entry: a range from the lowest to the highest id would also
        # hold every other consumer's entries in between, and could miss some of ours.
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xpending_range(stream, self.group, entry_id, entry_id, 1)
            replies = await pipe.execute()
        return {text(item["message_id"]): int(item["times_delivered"]) for reply in replies for item in reply}

    async def _drop_deleted(self, stream: str, entry_ids: list[str]) -> None:
        """Forget pending entries deleted from the stream (trimmed, purged or redriven): nothing is left to handle."""
        log.warning(
            "pending entries were deleted from the stream before being handled",
            extra={"stream": stream, "group": self.group, "entry_ids": entry_ids},
        )
        await self._ack_ids(stream, entry_ids)

    # ------------------------------------------------------------------- handling

    async def _handle_all(self, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        # In hand from now on, waiting for a free handler included: the heartbeat keeps them claimed.
        for entry in entries:
            self._in_flight[(entry.stream, entry.id)] = entry
        limit = asyncio.Semaphore(self.settings.concurrency)

        async def some(group: list[Entry]) -> None:
            try:
                async with limit:
                    if len(group) == 1:
                        await self._handle(group[0])
                    elif not await self._handle_group(group):
                        for entry in group:
                            await self._handle(entry)
            finally:
                for entry in group:
                    self._in_flight.pop((entry.stream, entry.id), None)

        await asyncio.gather(*(some(group) for group in self._groups(entries)))

    def _groups(self, entries: list[Entry]) -> list[list[Entry]]:
        """Fresh entries in groups for the group handler; every other entry alone."""
        if self.group_handler is None or self.settings.group_size <= 1:
            return [[entry] for entry in entries]
        fresh = [entry for entry in entries if entry.deliveries == 1]
        size = max(1, min(self.settings.group_size, -(-len(fresh) // self.settings.concurrency)))
        groups = [fresh[start : start + size] for start in range(0, len(fresh), size)]
        return groups + [[entry] for entry in entries if entry.deliveries > 1]

    async def _handle_group(self, group: list[Entry]) -> bool:
        """Handle and ack ``group`` at once; False when its entries must be handled one by one."""
        assert self.group_handler is not None
        handler = self.group_handler
        try:
            error = await self._through_outages(lambda: handler(group), {"group": self.group, "entries": len(group)})
        except _StopRequested:
            return True  # stays pending; handled again on restart or by another consumer
        if error is not None:
            log.warning(
                "group handler failed; handling its entries one by one",
                extra={"group": self.group, "entries": len(group), "error": f"{type(error).__name__}: {error}"},
            )
            return False
        for stream in {entry.stream for entry in group}:
            ids = [entry.id for entry in group if entry.stream == stream]
            await self._until_redis(functools.partial(self._ack_ids, stream, ids))
        ENTRIES_PROCESSED.labels(self.group, "handled").inc(len(group))
        return True

    async def _handle(self, entry: Entry) -> None:
        if entry.deliveries > self.settings.max_deliveries:
            await self._until_redis(lambda: self._dead_letter(entry))
            return
        if entry.deliveries > 1:
            REDELIVERIES.labels(self.group).inc()
        try:
            error = await self._through_outages(lambda: self.handler(entry), self._context(entry))
        except _StopRequested:
            return  # stays pending; handled again on restart or by another consumer
        if error is not None:
            await self._until_redis(lambda: self._record_failure(entry, error))
            ENTRIES_PROCESSED.labels(self.group, "failed").inc()
            return
        await self._until_redis(lambda: self._ack(entry))
        ENTRIES_PROCESSED.labels(self.group, "handled").inc()

    async def _through_outages(self, call: Callable[[], Awaitable[None]], context: dict[str, Any]) -> Exception | None:
        """Run a handler call, again and again while a server is unreachable (counting nothing).

        Returns None when the call returned, or the error it failed with for any other
        reason; raises ``_StopRequested`` when a stop comes while waiting out an outage.
        """
        delay = self.settings.retry_base_s
        while True:
            try:
                with ENTRY_HANDLING_SECONDS.labels(self.group).time():
                    await call()
                return None
            except Exception as error:
                if not is_outage(error):
                    return error
                log.warning(
                    "server unreachable; will retry", extra=context | {"error": f"{type(error).__name__}: {error}"}
                )
                if await _wait(self._stopping, delay):
                    raise _StopRequested from None
                delay = min(delay * 2, 5.0)

    async def _ack(self, entry: Entry) -> None:
        await self._ack_ids(entry.stream, [entry.id])

    async def _ack_ids(self, stream: str, entry_ids: list[str]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, self.group, *entry_ids)
            pipe.hdel(failures_key(self.group, stream), *(_failure_field(stream, entry_id) for entry_id in entry_ids))
            await pipe.execute()

    async def _record_failure(self, entry: Entry, error: Exception) -> None:
        log.error(
            "handler failed; the entry will be retried",
            extra=self._context(entry) | {"error": f"{type(error).__name__}: {error}", "deliveries": entry.deliveries},
            exc_info=error,
        )
        field = _failure_field(entry.stream, entry.id)
        previous = await self.redis.hget(failures_key(self.group, entry.stream), field)
        record = orjson.loads(previous) if previous else {"first_failure": _now_iso()}
        record.update(
            last_failure=_now_iso(),
            error_type=type(error).__name__,
            error_message=str(error)[:2000],
            consumer=self.name,
        )
        await self.redis.hset(failures_key(self.group, entry.stream), field, orjson.dumps(record))

    async def _dead_letter(self, entry: Entry) -> None:
        field = _failure_field(entry.stream, entry.id)
        stored = await self.redis.hget(failures_key(self.group, entry.stream), field)
        failure: dict[str, Any] = orjson.loads(stored) if stored else {}
        letter = DeadLetter(
            stream=entry.stream,
            entry_id=entry.id,
            group=self.group,
            consumer=failure.get("consumer", self.name),
            deliveries=entry.deliveries - 1,
            error_type=failure.get("error_type", "Unfinished"),
            error_message=failure.get(
                "error_message", "delivered repeatedly without finishing (the handling process stopped or died)"
            ),
            first_failure=failure.get("first_failure", ""),
            last_failure=failure.get("last_failure", _now_iso()),
            fields=entry.fields,
        )
        # DLQ first (on the required replicas), then ack: a crash or failover in between leaves a duplicate in
        # the DLQ, never a loss.
        await replication.append(self.redis, DLQ_STREAM, letter.to_fields())
        await self._ack(entry)
        log.error("entry dead-lettered", extra=self._context(entry) | {"deliveries": entry.deliveries - 1})
        DEAD_LETTERED.labels(self.group).inc()

    # -------------------------------------------------------------- keeping claims

    async def _heartbeat(self, done: asyncio.Event) -> None:
        """Refresh the idle time of entries in hand so no one reclaims them mid-work."""
        interval = max(self.settings.visibility_timeout_s / 3, 0.05)
        while not await _wait(done, interval):
            by_stream: dict[str, list[Any]] = {}
            for stream, entry_id in list(self._in_flight):
                by_stream.setdefault(stream, []).append(entry_id)
            for stream, ids in by_stream.items():
                try:
                    # JUSTID: resets the idle time without counting a delivery.
                    await self.redis.xclaim(stream, self.group, self.name, 0, ids, justid=True)
                except Exception as error:
                    # Beat on whatever happens: a stopped heartbeat lets long handlers be reclaimed.
                    # While Redis is away nobody can reclaim anything either.
                    if not is_outage(error):
                        log.warning("heartbeat failed", extra={"group": self.group, "error": repr(error)})

    # -------------------------------------------------------------------- helpers

    async def _guard(self, step: Callable[[], Awaitable[Any]]) -> Any:
        """Run a Redis step of the main loop; during an outage, wait and report nothing done."""
        try:
            return await step()
        except Exception as error:
            if not is_outage(error):
                raise
            log.warning("redis unreachable; retrying", extra={"group": self.group, "error": str(error)})
            await asyncio.sleep(1.0)
            return None

    async def _until_redis(self, step: Callable[[], Awaitable[Any]]) -> Any:
        """Run a Redis step until it succeeds, backing off while Redis is unreachable."""
        return await until_answered(step, f"group {self.group}")

    def _entries(self, stream: Any, items: Iterable[Any], deliveries: int) -> Iterable[Entry]:
        for entry_id, fields in items:
            if fields:
                yield Entry(text(stream), text(entry_id), fields, deliveries)

    def _context(self, entry: Entry) -> dict[str, Any]:
        return {"stream": entry.stream, "group": self.group, "consumer": self.name, "entry_id": entry.id}


class _StopRequested(Exception):
    """A stop came while a handler call was waiting out an outage."""


def by_slot(streams: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``streams`` in groups that share a Redis Cluster slot, in order (the same groups in single mode): what one
    multi-stream command may name together."""
    slots: dict[int, list[str]] = {}
    for stream in streams:
        slots.setdefault(key_slot(stream.encode()), []).append(stream)
    return [tuple(group) for group in slots.values()]


def _failure_field(stream: str, entry_id: str) -> str:
    return f"{stream}/{entry_id}"


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; return whether it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
