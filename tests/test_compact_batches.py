"""Row batches are stored compactly (ingestro.domain.codec, version 2): positional values, zstd-compressed.

Redis memory per accepted row stays under the row's CSV bytes, and entries of version 1 (plain JSON, values by
name) written before the upgrade still decode.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from ingestro.datasets import get_dataset
from ingestro.devtools.samples import write_sample_file
from ingestro.domain.codec import UnknownEvent, decode, encode, payload_json
from ingestro.domain.events import AcceptedRow, RowsAccepted, RowsRejected
from ingestro.formats.parsing import parse_file

JOB = "0b6f0c1e-6a4e-4d0c-9a59-3f1f2b7c9d10"
ROWS = 20_000


def entry(fields: dict[str, bytes]) -> dict[bytes, bytes]:
    return {key.encode(): value for key, value in fields.items()}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RowsAccepted]]:
    path = tmp_path_factory.mktemp("compact") / "contacts.csv"
    write_sample_file(path, "csv", ROWS)
    events = parse_file(JOB, path, "csv", get_dataset("contacts"), 500, position="1-0")
    return path, [event for event in events if isinstance(event, RowsAccepted)]


def test_generated_batches_round_trip(sample: tuple[Path, list[RowsAccepted]]) -> None:
    _, batches = sample
    for batch in batches:
        assert decode(entry(encode(batch))) == batch


def test_rows_whose_fields_differ_from_the_first_round_trip_with_their_own_fields() -> None:
    rows = [
        AcceptedRow(2, "a" * 64, {"email": "a@x.io", "age": 3}),
        AcceptedRow(3, "b" * 64, {"age": 4, "email": "b@x.io"}),  # the same fields in another order
        AcceptedRow(4, "c" * 64, {"email": "c@x.io", "age": None, "extra_columns": {"nick": "c"}}),
        AcceptedRow(5, "d" * 64, {"email": "d@x.io"}),
        AcceptedRow(6, "e" * 64, {}),
    ]
    batch = RowsAccepted(JOB, "contacts", 3, rows, schema_version=2, position="5-1")
    decoded = decode(entry(encode(batch)))
    assert decoded == batch
    assert isinstance(decoded, RowsAccepted)
    assert [list(row.values) for row in decoded.rows] == [list(row.values) for row in rows[:1]] * 2 + [
        list(row.values) for row in rows[2:]
    ]


@pytest.mark.parametrize("values", [{}, {"only": 1}], ids=["no-field", "one-field"])
def test_batches_of_datasets_with_few_fields_round_trip(values: dict[str, int]) -> None:
    batch = RowsAccepted(JOB, "d", 0, [AcceptedRow(2, "f" * 64, values), AcceptedRow(3, "0" * 64, values)])
    assert decode(entry(encode(batch))) == batch


def test_an_empty_batch_round_trips() -> None:
    for batch in (RowsAccepted(JOB, "d", 0, []), RowsRejected(JOB, "d", 0, [])):
        assert decode(entry(encode(batch))) == batch


def test_an_entry_of_version_1_still_decodes() -> None:
    """As the codec wrote RowsAccepted before version 2: plain JSON, values by field name."""
    old = {
        b"type": b"RowsAccepted",
        b"v": b"1",
        b"data": orjson.dumps(
            {
                "job_id": JOB,
                "dataset": "contacts",
                "seq": 7,
                "rows": [[2, "ab" * 32, {"email": "ada@example.com", "age": 36}]],
                "schema_version": 1,
                "position": "1700000000000-0",
            }
        ),
    }
    assert decode(old) == RowsAccepted(
        JOB, "contacts", 7, [AcceptedRow(2, "ab" * 32, {"email": "ada@example.com", "age": 36})], 1, "1700000000000-0"
    )
    rejected = {
        b"type": b"RowsRejected",
        b"v": b"1",
        b"data": orjson.dumps(
            {"job_id": JOB, "dataset": "contacts", "seq": 0, "rows": [{"line": 3, "errors": [], "raw": "x"}]}
        ),
    }
    decoded = decode(rejected)
    assert isinstance(decoded, RowsRejected) and decoded.rows[0].raw == "x"


def test_new_batches_are_written_in_version_2_and_compressed() -> None:
    batch = RowsAccepted(JOB, "d", 0, [AcceptedRow(2, "f" * 64, {"a": 1, "b": "x"})])
    fields = entry(encode(batch))
    assert fields[b"v"] == b"2"
    assert orjson.loads(payload_json(fields))["fields"] == ["a", "b"]
    assert orjson.loads(payload_json(fields))["rows"] == [[2, "f" * 64, [1, "x"]]]


def test_a_payload_that_does_not_decompress_is_an_unknown_event() -> None:
    fields = entry(encode(RowsAccepted(JOB, "d", 0, [])))
    fields[b"data"] = b"{not zstd"
    with pytest.raises(UnknownEvent, match="does not decompress"):
        decode(fields)


def test_encoded_bytes_per_row_stay_under_the_csv_bytes(sample: tuple[Path, list[RowsAccepted]]) -> None:
    path, batches = sample
    csv_per_row = path.stat().st_size / ROWS
    rows = sum(len(batch.rows) for batch in batches)
    per_row = sum(len(encode(batch)["data"]) for batch in batches) / rows
    assert per_row < 0.9 * csv_per_row


async def test_redis_memory_per_accepted_row_stays_under_its_csv_bytes(
    sample: tuple[Path, list[RowsAccepted]], redis: aioredis.Redis
) -> None:
    """MEMORY USAGE of a stream of the generated batches, per accepted row, against the CSV bytes of a row;
    version 1 entries of the same batches took ~3.5 times the CSV bytes."""
    path, batches = sample
    rows = sum(len(batch.rows) for batch in batches)
    csv_per_row = path.stat().st_size / ROWS
    for batch in batches:
        await redis.xadd("compact-test", encode(batch))  # type: ignore[arg-type]
    used = await redis.memory_usage("compact-test", samples=0)
    assert used is not None and used / rows < csv_per_row


def test_payload_json_shows_a_payload_that_does_not_decompress_as_it_is() -> None:
    fields = entry(encode(RowsAccepted(JOB, "d", 0, [])))
    fields[b"data"] = b"{not zstd"
    assert payload_json(fields) == b"{not zstd"
