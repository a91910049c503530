"""Every Redis stream, consumer group and Redis key name, defined once; and how row streams are partitioned.

Streams carry events. Which streams each consumer group reads, each consumer says itself
(``Parser.streams``, ``Projection.streams``), gathered in ``ingestro.services.consumer_groups``.
Nothing else in the code base spells these strings.

**Key layout (the same in single and cluster mode).** The low-volume keys read or written together
(files, job events, job status, dead letters, and the failure records of the groups reading them)
share the hash tag ``{core}``, so that one XREADGROUP, XREAD or MULTI over them stays in one Redis
Cluster slot. Each row stream (``ROW_STREAMS``) is a *logical* stream made of ``partitions`` stream
keys (``INGESTRO_PARTITIONS``), partition ``i`` tagged ``partition_tag(i, partitions)``, a tag chosen so
that the partitions' slots spread evenly over the 16384 slots (and hence over a cluster's shards).
A batch goes to the partition ``partition_of(job, seq)``. A group's failure records live in a hash
beside each stream it reads (``failures_key``: same tag), so the ack (XACK + HDEL) is one transaction
in one slot. Keys used alone (idempotency, rate, upload slots) carry no tag: each lands anywhere.
"""

from __future__ import annotations

import functools
import re
import zlib

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ingestro.config import MAX_PARTITIONS

PREFIX = "ingestro"
#: The hash tag of the low-volume keys read or written together.
CORE_TAG = "{core}"

#: FileReceived: one entry per accepted upload; ParseRange: one per byte range of a file parsed on many cores.
FILES_STREAM = f"{PREFIX}:{CORE_TAG}:files"
#: ImportRequested: one entry per pull import (``POST /imports``), read by the ``fetcher``.
IMPORTS_STREAM = f"{PREFIX}:{CORE_TAG}:imports"
#: RowsAccepted: one entry per batch of valid, normalized rows. A logical stream: see ``partition_keys``.
ACCEPTED_STREAM = f"{PREFIX}:rows-accepted"
#: RowsRejected: one entry per batch of rejected rows with their errors. A logical stream: see ``partition_keys``.
REJECTED_STREAM = f"{PREFIX}:rows-rejected"
#: The logical streams stored as ``partitions`` stream keys each (row batches), whose backlog
#: ``INGESTRO_MAX_BACKLOG`` bounds per partition.
ROW_STREAMS: tuple[str, ...] = (ACCEPTED_STREAM, REJECTED_STREAM)
#: Job lifecycle: ParseStarted, ParseCompleted, ParseFailed, BatchApplied.
JOB_EVENTS_STREAM = f"{PREFIX}:{CORE_TAG}:job-events"
#: Dead-letter stream: entries that failed ``max_deliveries`` times.
DLQ_STREAM = f"{PREFIX}:{CORE_TAG}:dlq"
#: JobStatusChanged, published by the ``jobs`` projection after its commit. Read by the ``notifications``
#: group (webhooks) and followed by plain XREAD (``GET /jobs/{id}/events``, with the job events: same slot).
JOB_STATUS_STREAM = f"{PREFIX}:{CORE_TAG}:job-status"
#: Streams followed by plain XREAD besides any group: retention keeps their entries at least
#: ``FOLLOWED_FLOOR_S`` (see ``ingestro.streams.retention``), and trims them by age when no group reads them.
FOLLOWED_STREAMS: tuple[str, ...] = (JOB_STATUS_STREAM,)

#: The stream keys of deployments before partitioning (un-tagged): ``ingestro.streams.layout`` looks for them.
LEGACY_STREAMS: tuple[str, ...] = tuple(
    f"{PREFIX}:{name}" for name in ("files", "rows-accepted", "rows-rejected", "job-events", "dlq", "job-status")
)

PARSER_GROUP = "parser"
FETCHER_GROUP = "fetcher"
DATA_GROUP = "data"
ERRORS_GROUP = "errors"
JOBS_GROUP = "jobs"
NOTIFICATIONS_GROUP = "notifications"

_PARTITION_KEY = re.compile(r"(?P<stream>.+):\{p(?P<index>\d+)\.\d+\}$")


@functools.lru_cache(maxsize=MAX_PARTITIONS)
def partition_tag(index: int, partitions: int) -> str:
    """The hash tag of partition ``index`` of ``partitions``: the first tag ``{pINDEX.N}`` whose slot lies near the
    middle of the partition's share of the slots (``index * 16384 / partitions`` onwards; within an eighth of the
    share, or 16 slots), so that the partitions spread evenly over the slots and every shard holding a range of
    slots gets its share. A pure function: the keys of a deployment never change."""
    if not 0 <= index < partitions <= MAX_PARTITIONS:
        raise ValueError(f"partition {index} of {partitions} does not exist")
    share = REDIS_CLUSTER_HASH_SLOTS / partitions
    middle, within = (index + 0.5) * share, max(share / 8, 16)
    n = 0
    while True:
        tag = f"{{p{index}.{n}}}"
        if abs(key_slot(tag.encode()) - middle) < within:
            return tag
        n += 1


def partition_key(stream: str, index: int, partitions: int) -> str:
    """The stream key of partition ``index`` of the row stream ``stream`` (one of ``ROW_STREAMS``)."""
    if stream not in ROW_STREAMS:
        raise ValueError(f"{stream} is not a partitioned stream")
    return f"{stream}:{partition_tag(index, partitions)}"


def partition_keys(stream: str, partitions: int) -> tuple[str, ...]:
    """Every stream key of the row stream ``stream``, partition 0 first."""
    return tuple(partition_key(stream, index, partitions) for index in range(partitions))


def stream_keys(streams: tuple[str, ...], partitions: int) -> tuple[str, ...]:
    """The stream keys behind ``streams`` (as a consumer declares them): each row stream's partitions in its
    place, every other stream as it is. The one way to list what a group reads."""
    return tuple(
        key
        for stream in streams
        for key in (partition_keys(stream, partitions) if stream in ROW_STREAMS else (stream,))
    )


def logical_stream(key: str) -> str:
    """The stream a stream key belongs to: the row stream of a partition key, or the key itself."""
    match = _PARTITION_KEY.fullmatch(key)
    return match["stream"] if match else key


def partition_of(job_id: str, seq: int, partitions: int) -> int:
    """The partition of a job's batch ``seq``: a job's consecutive batches go to consecutive partitions from one that
    depends on the job alone (CRC-32 of its id), so one file spreads over every partition and two processes (or two
    versions) always agree."""
    return (zlib.crc32(job_id.encode()) + seq) % partitions


def hash_tag(key: str) -> str:
    """The hash tag of a key (``{...}``, as Redis Cluster reads it), or "" when it has none."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start : end + 1] if start >= 0 and end > start + 1 else ""


def idempotency_key(scope: str, key: str) -> str:
    """String: what became of the upload sent with Idempotency-Key ``key`` by the caller ``scope``."""
    return f"{PREFIX}:idempotency:{scope}:{key}"


def rate_limit_key(caller: str) -> str:
    """Hash: the token bucket (tokens, last refill) of an API key's request rate."""
    return f"{PREFIX}:rate:{caller}"


def uploads_key(caller: str) -> str:
    """Sorted set: the uploads an API key is sending now, scored by when their lease expires."""
    return f"{PREFIX}:uploads:{caller}"


def failures_key(group: str, stream: str) -> str:
    """Hash of entry id -> first/last failure record for entries of ``stream`` that ``group`` failed to handle; in the
    slot of ``stream`` (its hash tag), so that an ack removes the record in the same transaction."""
    return f"{PREFIX}:{hash_tag(stream) or CORE_TAG}:failures:{group}"


def parse_ranges_key(job_id: str) -> str:
    """Hash of range index -> outcome of the ranges of a job's file parsed so far (``consumers.ranges``); used
    alone (one key per MULTI), so it carries no hash tag."""
    return f"{PREFIX}:parse-ranges:{job_id}"
