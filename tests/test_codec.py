"""Specification of the event codec (``ingestro.domain.codec``): events <-> Redis stream entries."""

from __future__ import annotations

import attrs
import orjson
import pytest

from ingestro.domain.codec import EntryFields, UnknownEvent, decode, encode, event_type, payload_json
from ingestro.domain.events import (
    EVENT_TYPES,
    AcceptedRow,
    BatchApplied,
    Event,
    FieldError,
    FileReceived,
    ImportRequested,
    JobStatusChanged,
    ParseCompleted,
    ParseFailed,
    ParseRange,
    ParseStarted,
    RejectedRow,
    RowsAccepted,
    RowsRejected,
    UploadOptions,
)

JOB = "0b6f0c1e-6a4e-4d0c-9a59-3f1f2b7c9d10"

SAMPLES: list[Event] = [
    FileReceived(
        job_id=JOB,
        dataset="contacts",
        filename="contacts (1).csv",
        storage_key="uploads/0b6f0c1e.csv",
        format="csv",
        bytes=1234,
        sha256="ab" * 32,
        received_at="2024-01-05T10:00:00+00:00",
    ),
    ParseRange(
        FileReceived(JOB, "contacts", "big.csv", "k", "csv", 9, "ab" * 32, "2024-01-05T10:00:00+00:00"),
        position="1-0",
        index=1,
        ranges=2,
        start=5,
        end=9,
        header_end=5,
        line_shift=1,
    ),
    FileReceived(
        job_id=JOB,
        dataset="contacts",
        filename="export.csv",
        storage_key=JOB,
        format="csv",
        bytes=10,
        sha256="ab" * 32,
        received_at="2024-01-05T10:00:00+00:00",
        source="https://example.com/export.csv",
        etag='"v1"',
        last_modified="Wed, 21 Oct 2026 07:28:00 GMT",
    ),
    ImportRequested(
        job_id=JOB,
        source="s3://bucket/a/b.csv.gz",
        dataset="contacts",
        dataset_version=2,
        format="csv",
        options=UploadOptions(compression="gzip", max_errors=3),
        tenant="acme",
        requested_by="k1",
        requested_at="2024-01-05T10:00:00+00:00",
    ),
    RowsAccepted(
        job_id=JOB,
        dataset="contacts",
        seq=0,
        rows=[
            AcceptedRow(
                line=2,
                content_hash="cd" * 32,
                values={
                    "email": "ada@example.com",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "age": 36,
                    "signup_date": "2024-01-05",
                    "metadata": {"tags": ["a", "b"], "nested": {"x": None, "ok": True}},
                    "id": None,
                },
            ),
            AcceptedRow(line=3, content_hash="ef" * 32, values={"email": "é@example.com", "age": -(2**63)}),
        ],
    ),
    RowsRejected(
        job_id=JOB,
        dataset="contacts",
        seq=1,
        rows=[
            RejectedRow(
                line=4,
                errors=[
                    FieldError("email", "invalid_email", "'nope' is not a valid email address"),
                    FieldError("age", "invalid_integer", "'abc' is not an integer"),
                ],
                raw={"email": "nope", "age": "abc", "first_name": ""},
            ),
            RejectedRow(line=5, errors=[FieldError(None, "invalid_text", "row is not valid Unicode")], raw=[1, "x"]),
            RejectedRow(line=6, errors=[], raw=None),
            RejectedRow(line=7, errors=[], raw="just text"),
        ],
    ),
    ParseStarted(job_id=JOB),
    ParseCompleted(
        job_id=JOB,
        rows_total=10,
        rows_accepted=7,
        rows_rejected=3,
        accepted_batches=1,
        rejected_batches=1,
        unknown_columns=["nickname", " Extra "],
    ),
    ParseFailed(job_id=JOB, reason="invalid UTF-8", line=12, rows_total=11, accepted_batches=1, rejected_batches=0),
    ParseFailed(job_id=JOB, reason="empty file", line=None, rows_total=0, accepted_batches=0, rejected_batches=0),
    BatchApplied(job_id=JOB, projection="contacts", seq=0, rows=7, inserted=5, duplicate=2),
    JobStatusChanged(
        job_id=JOB,
        status="failed",
        previous="processing",
        rows_total=11,
        rows_accepted=7,
        rows_rejected=1,
        rows_inserted=5,
        rows_duplicate=2,
        error="invalid UTF-8",
    ),
]


def as_entry(fields: dict[str, bytes]) -> EntryFields:
    """The fields as Redis returns them: keys and values are bytes."""
    return {key.encode(): value for key, value in fields.items()}


def sample_id(event: Event) -> str:
    return type(event).__name__


def test_there_is_a_sample_of_every_event_type() -> None:
    assert {type(event) for event in SAMPLES} == set(EVENT_TYPES)


def test_event_type_names_are_unique_and_match_the_class_names() -> None:
    names = [cls.type_name for cls in EVENT_TYPES]
    assert names == [cls.__name__ for cls in EVENT_TYPES]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_every_event_round_trips_through_encode_and_decode(event: Event) -> None:
    decoded = decode(as_entry(encode(event)))
    assert type(decoded) is type(event)
    assert decoded == event


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_nested_rows_decode_to_their_classes(event: Event) -> None:
    decoded = decode(as_entry(encode(event)))
    if isinstance(decoded, RowsAccepted):
        assert all(type(row) is AcceptedRow for row in decoded.rows)
    if isinstance(decoded, RowsRejected):
        assert all(type(row) is RejectedRow for row in decoded.rows)
        assert all(type(error) is FieldError for row in decoded.rows for error in row.errors)


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_encoded_fields_are_exactly_type_v_and_data_as_bytes(event: Event) -> None:
    fields = encode(event)
    assert set(fields) == {"type", "v", "data"}
    assert all(isinstance(value, bytes) for value in fields.values())
    assert fields["type"] == type(event).type_name.encode()
    assert fields["v"] == str(type(event).version).encode()
    assert isinstance(orjson.loads(payload_json(as_entry(fields))), dict)


def test_data_is_the_events_attributes_as_json() -> None:
    event = BatchApplied(job_id=JOB, projection="contacts", seq=3, rows=7, inserted=5, duplicate=2)
    assert orjson.loads(encode(event)["data"]) == {
        "job_id": JOB,
        "projection": "contacts",
        "seq": 3,
        "rows": 7,
        "inserted": 5,
        "duplicate": 2,
        "updated": 0,
    }


@pytest.mark.parametrize(
    ("type_name", "data", "expected"),
    [
        (
            "RowsAccepted",
            {"job_id": JOB, "dataset": "contacts", "seq": 0, "rows": []},
            RowsAccepted(JOB, "contacts", 0, [], schema_version=1, position=None),
        ),
        (
            "BatchApplied",
            {"job_id": JOB, "projection": "data", "seq": 0, "rows": 2, "inserted": 1, "duplicate": 1},
            BatchApplied(JOB, "data", 0, 2, 1, 1, updated=0),
        ),
    ],
)
def test_entries_written_before_datasets_had_versions_decode_with_the_defaults(
    type_name: str, data: dict[str, object], expected: Event
) -> None:
    assert decode({b"type": type_name.encode(), b"v": b"1", b"data": orjson.dumps(data)}) == expected


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
def test_event_type_reads_the_type_name(event: Event) -> None:
    assert event_type(as_entry(encode(event))) == type(event).type_name


def test_event_type_does_not_decode_the_payload() -> None:
    entry: EntryFields = {b"type": b"RowsAccepted", b"v": b"99", b"data": b"{not json"}
    assert event_type(entry) == "RowsAccepted"
    assert event_type({b"type": b"SomethingElse"}) == "SomethingElse"


def test_event_type_of_an_entry_without_type_is_empty() -> None:
    assert event_type({b"data": b"{}"}) == ""


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({b"type": b"JobDeleted", b"v": b"1", b"data": b"{}"}, id="unknown-type"),
        pytest.param({b"type": b"fileReceived", b"v": b"1", b"data": b"{}"}, id="type-is-case-sensitive"),
        pytest.param({b"type": b"", b"v": b"1", b"data": b"{}"}, id="empty-type"),
        pytest.param({b"v": b"1", b"data": b"{}"}, id="no-type"),
    ],
)
def test_decode_of_an_unknown_type_raises_unknown_event(entry: EntryFields) -> None:
    with pytest.raises(UnknownEvent):
        decode(entry)


@pytest.mark.parametrize("event", SAMPLES, ids=sample_id)
@pytest.mark.parametrize("version", [b"0", b"3", b"-1", b"x"])
def test_decode_of_a_wrong_version_raises_unknown_event(event: Event, version: bytes) -> None:
    entry = as_entry(encode(event))
    entry[b"v"] = version
    with pytest.raises(UnknownEvent):
        decode(entry)


def test_decode_of_an_entry_without_version_raises_unknown_event() -> None:
    entry = as_entry(encode(ParseStarted(job_id=JOB)))
    del entry[b"v"]
    with pytest.raises(UnknownEvent):
        decode(entry)


def test_unknown_event_is_a_value_error() -> None:
    assert issubclass(UnknownEvent, ValueError)


def test_a_file_received_written_before_upload_options_decodes_with_none() -> None:
    event = SAMPLES[0]
    assert isinstance(event, FileReceived)
    entry = as_entry(encode(event))
    data = orjson.loads(entry[b"data"])
    del data["options"]
    entry[b"data"] = orjson.dumps(data)
    assert decode(entry) == event
    assert event.options == UploadOptions()


def test_upload_options_travel_in_file_received() -> None:
    options = UploadOptions(delimiter=";", encoding="cp1252", compression="gzip", max_errors=3, max_error_rate=0.5)
    event = attrs.evolve(SAMPLES[0], options=options)
    assert decode(as_entry(encode(event))) == event
