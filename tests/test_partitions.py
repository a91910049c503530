"""The key layout of ``ingestro.streams.names``: partition tags spread over the slots, stable routing, one slot per
multi-key command."""

from __future__ import annotations

import zlib

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ingestro.config import MAX_PARTITIONS
from ingestro.domain.events import RowsAccepted, RowsRejected
from ingestro.services.consumer_groups import GROUP_STREAMS, group_stream_keys
from ingestro.streams import names
from ingestro.streams.publisher import stream_for
from ingestro.streams.runtime import by_slot


def slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("partitions", [1, 3, 8, 16, 100, MAX_PARTITIONS])
def test_each_partition_lands_in_its_own_share_of_the_slots(partitions: int) -> None:
    share = REDIS_CLUSTER_HASH_SLOTS / partitions
    slots = [slot(key) for key in names.partition_keys(names.ACCEPTED_STREAM, partitions)]
    assert all(index * share <= found < (index + 1) * share for index, found in enumerate(slots)), slots
    assert len(set(slots)) == partitions


@pytest.mark.parametrize(("partitions", "shards"), [(8, 3), (16, 3), (16, 5), (64, 7)])
def test_partitions_spread_evenly_over_shards_holding_equal_slot_ranges(partitions: int, shards: int) -> None:
    """As `redis-cli --cluster create` splits the slots: contiguous, equal ranges; no shard gets two partitions more
    than another."""
    per_shard = [0] * shards
    for key in names.partition_keys(names.ACCEPTED_STREAM, partitions):
        per_shard[slot(key) * shards // REDIS_CLUSTER_HASH_SLOTS] += 1
    assert max(per_shard) - min(per_shard) <= 1, per_shard


def test_tags_do_not_depend_on_the_process_and_never_change() -> None:
    """Deployed streams are named by them: a change would strand their entries."""
    assert names.partition_keys(names.ACCEPTED_STREAM, 8)[:2] == (
        f"ingestro:rows-accepted:{names.partition_tag(0, 8)}",
        f"ingestro:rows-accepted:{names.partition_tag(1, 8)}",
    )
    assert [names.partition_tag(index, 8) for index in range(8)] == [
        "{p0.1}", "{p1.19}", "{p2.20}", "{p3.9}", "{p4.21}", "{p5.53}", "{p6.40}", "{p7.18}"
    ]  # fmt: skip


def test_a_job_s_batches_go_round_every_partition_from_a_stable_start() -> None:
    job = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
    routed = [names.partition_of(job, seq, 8) for seq in range(16)]
    assert sorted(routed[:8]) == list(range(8)) and routed[8:] == routed[:8]
    assert routed[0] == zlib.crc32(job.encode()) % 8
    assert routed == [names.partition_of(job, seq, 8) for seq in range(16)]


def test_a_batch_is_published_to_its_partition_and_needs_the_partitions() -> None:
    batch = RowsAccepted("job", "contacts", 3, [])
    assert stream_for(batch, 8) == names.partition_key(names.ACCEPTED_STREAM, names.partition_of("job", 3, 8), 8)
    rejected = RowsRejected("job", "contacts", 3, [])
    assert names.logical_stream(stream_for(rejected, 8)) == names.REJECTED_STREAM
    with pytest.raises(ValueError, match="partitions"):
        stream_for(batch)


def test_keys_read_or_written_together_share_a_slot() -> None:
    core = {names.FILES_STREAM, names.JOB_EVENTS_STREAM, names.DLQ_STREAM, names.JOB_STATUS_STREAM}
    assert len({slot(key) for key in core}) == 1
    for group, streams in group_stream_keys(8).items():
        for stream in streams:  # the ack's MULTI: XACK on the stream, HDEL on the group's failure records
            assert slot(names.failures_key(group, stream)) == slot(stream), (group, stream)
    # the jobs group reads its three streams in one XREADGROUP; the data group one per partition
    assert len(by_slot(group_stream_keys(8)[names.JOBS_GROUP])) == 1
    assert len(by_slot(group_stream_keys(8)[names.DATA_GROUP])) == 8


def test_groups_read_row_streams_through_their_partitions() -> None:
    assert GROUP_STREAMS[names.DATA_GROUP] == (names.ACCEPTED_STREAM,)
    keys = group_stream_keys(4)
    assert keys[names.DATA_GROUP] == names.partition_keys(names.ACCEPTED_STREAM, 4)
    assert keys[names.ERRORS_GROUP] == names.partition_keys(names.REJECTED_STREAM, 4)
    assert keys[names.JOBS_GROUP] == GROUP_STREAMS[names.JOBS_GROUP]
    assert {names.logical_stream(key) for key in keys[names.DATA_GROUP]} == {names.ACCEPTED_STREAM}


def test_a_partition_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError):
        names.partition_tag(8, 8)
    with pytest.raises(ValueError):
        names.partition_key(names.FILES_STREAM, 0, 8)
