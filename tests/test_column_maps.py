"""Specification of column mappings (``?map=``): checked against the dataset at upload, applied by the readers
before columns are matched (CSV headers, JSON array and NDJSON keys), carried by FileReceived and its job row."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestro.database.job_sources import file_received_of
from ingestro.datasets.column_maps import InvalidColumnMap, checked_column_map, header_shape, parse_column_map
from ingestro.domain import codec
from ingestro.domain.events import FileReceived, UploadOptions
from tests.parse_outcome import Outcome, contact, parse
from tests.test_columns import people

MAPPED_CSV = (
    "E-mail address,Given,Family,Joined,Internal id\na@example.com,Ann,Lee,2024-01-05,17\nbad,Bob,Ray,2024-01-06,18\n"
)
MAP: dict[str, str | None] = {
    "E-mail address": "email",
    "given": "first_name",  # compared trimmed and case-insensitive, like header columns
    "Family ": "last_name",
    "Joined": "signup_date",
    "Internal id": None,
}
ROWS: list[dict[str, Any]] = [
    {"E-mail address": "a@example.com", "Given": "Ann", "Family": "Lee", "Joined": "2024-01-05", "Internal id": 17},
    {"E-mail address": "bad", "Given": "Bob", "Family": "Ray", "Joined": "2024-01-06", "Internal id": 18},
]


def mapped(tmp_path: Path, name: str, content: str, column_map: dict[str, str | None] | None = MAP) -> Outcome:
    path = tmp_path / name
    path.write_text(content)
    return parse(path, options=UploadOptions(column_map=column_map))


@pytest.mark.parametrize(
    ("name", "content", "first"),
    [
        ("mapped.csv", MAPPED_CSV, 2),
        ("mapped.json", orjson.dumps(ROWS).decode(), 1),
        ("mapped.ndjson", "\n".join(orjson.dumps(row).decode() for row in ROWS) + "\n", 1),
    ],
)
def test_the_readers_rename_and_ignore_mapped_columns_before_matching(
    tmp_path: Path, name: str, content: str, first: int
) -> None:
    outcome = mapped(tmp_path, name, content)
    assert outcome.failure is None
    assert outcome.accepted == {first: contact("a@example.com", "Ann", "Lee", "2024-01-05")}
    assert outcome.rejected == {first + 1: [("email", "invalid_email")]}
    assert outcome.unknown_columns == []  # the ignored column is not unknown either
    # Without the mapping the file does not fit the dataset.
    unmapped = mapped(tmp_path, name, content, None)
    assert unmapped.accepted == {}
    assert "Internal id" in unmapped.unknown_columns or unmapped.failure is not None


def test_a_mapped_column_wins_over_its_own_name_and_an_ignored_field_column_is_dropped(tmp_path: Path) -> None:
    content = "email,first_name,last_name,signup_date,contact\nold@x.org,A,B,2024-01-05,new@example.com\n"
    outcome = mapped(tmp_path, "swap.csv", content, {"email": None, "contact": "email"})
    assert outcome.accepted == {2: contact("new@example.com", "A", "B", "2024-01-05")}


def test_two_columns_of_one_field_after_mapping_fail_the_csv_header_and_reject_the_json_row(tmp_path: Path) -> None:
    content = "email,mail,first_name,last_name,signup_date\na@x.org,b@x.org,A,B,2024-01-05\n"
    failed = mapped(tmp_path, "twice.csv", content, {"mail": "email"})
    assert failed.failure is not None and "repeats columns: mail" in failed.failure[0]
    rows = [{"email": "a@x.org", "mail": "b@x.org", "first_name": "A", "last_name": "B", "signup_date": "2024-01-05"}]
    rejected = mapped(tmp_path, "twice.json", orjson.dumps(rows).decode(), {"mail": "email"})
    assert rejected.rejected == {1: [("email", "duplicate_column")]}


def test_an_ignored_column_is_not_rejected_nor_kept_by_the_dataset_policy(tmp_path: Path) -> None:
    content = "E-mail,Secret\na@example.com,hush\n"
    for policy in ("reject", "keep"):
        path = tmp_path / f"{policy}.csv"
        path.write_text(content)
        outcome = parse(path, options=UploadOptions(column_map={"Secret": None}), dataset=people(policy))
        assert outcome.failure is None, policy
        assert outcome.accepted == {2: {"email": "a@example.com", "name": None, "age": None}}, policy


def test_a_mapped_column_the_file_lacks_maps_nothing(tmp_path: Path) -> None:
    content = "email,first_name,last_name,signup_date\na@example.com,A,B,2024-01-05\n"
    outcome = mapped(tmp_path, "plain.csv", content, {"Not there": "age", "Nor this": None})
    assert outcome.accepted == {2: contact("a@example.com", "A", "B", "2024-01-05")}


def test_a_mapping_is_checked_against_the_dataset() -> None:
    assert checked_column_map({"Mail": "E-mail", "X": None}, people()) == {"Mail": "email", "X": None}
    assert parse_column_map('{"Mail": "email"}', people()) == {"Mail": "email"}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([["Mail", "email"]], "must be a JSON object"),
        ({"Mail": "nope"}, "'nope', which is not a field of dataset people (fields: email, name, age)"),
        ({"Mail": 3}, "'3', which is not a field"),
        ({"Mail": "email", "Other": "email"}, "columns 'Mail' and 'Other' are both mapped to email"),
        ({"Mail": "email", "E-mail address": "e-mail"}, "both mapped to email"),
        ({"Mail": "email", " mail": None}, "columns 'Mail' and ' mail' are the same column"),
        ({"  ": "email"}, "a mapped column must be a printable name"),
        ({"a\x00b": "email"}, "a mapped column must be a printable name"),
        ({"x" * 1001: "email"}, "a mapped column must be a printable name"),
        ({f"c{i}": None for i in range(1001)}, "more than 1000 columns"),
    ],
)
def test_a_mapping_that_cannot_apply_is_refused_saying_why(value: Any, says: str) -> None:
    with pytest.raises(InvalidColumnMap) as refused:
        checked_column_map(value, people())
    assert says in str(refused.value)


def test_a_mapping_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidColumnMap, match="must be a JSON object"):
        parse_column_map("Mail=email", people())


def test_a_header_shape_is_its_columns_as_compared_in_order() -> None:
    assert header_shape(["Email ", "NAME"]) == header_shape(["email", " name"])
    assert header_shape(["email", "name"]) != header_shape(["name", "email"])
    assert len(header_shape(["a"])) == 64


def received(options: UploadOptions) -> FileReceived:
    return FileReceived(
        job_id="job", dataset="contacts", filename="f.csv", storage_key="k", format="csv", bytes=1,
        sha256="0" * 64, received_at="2024-01-01T00:00:00+00:00", options=options,
    )  # fmt: skip


def test_the_mapping_travels_in_file_received_and_old_entries_decode_without_one() -> None:
    event = received(UploadOptions(column_map=MAP))
    fields = {key.encode(): value for key, value in codec.encode(event).items()}
    assert codec.decode(fields) == event
    old = received(UploadOptions(max_errors=3))
    data = orjson.loads(codec.encode(old)["data"])
    del data["options"]["column_map"]
    fields = {b"type": b"FileReceived", b"v": b"1", b"data": orjson.dumps(data)}
    assert codec.decode(fields) == old


def test_a_job_row_gives_back_the_mapping_so_a_reparse_reads_the_file_alike() -> None:
    event = received(UploadOptions(column_map=MAP))
    row = {
        **{name: getattr(event, name) for name in ("job_id", "dataset", "filename", "storage_key", "format")},
        **{name: getattr(event, name) for name in ("bytes", "sha256", "tenant", "uploaded_by", "dataset_version")},
        "received_at": datetime.fromisoformat(event.received_at),
        "options": orjson.loads(orjson.dumps({"column_map": MAP})),
        "position": "1-0",
        "source": None,
        "source_etag": None,
        "source_last_modified": None,  # an upload, not a pull import
    }
    source = file_received_of(row)
    assert source is not None and source.event == event


def test_xlsx_and_parquet_headers_are_mapped_alike(tmp_path: Path) -> None:
    import pyarrow as pa

    from tests.test_xlsx_parquet import parquet_bytes
    from tests.workbooks import row, sheet, workbook

    header = list(ROWS[0])
    cells = [list(values.values()) for values in ROWS]
    book = workbook({"People": sheet(row(1, *header), row(2, *cells[0]), row(3, *cells[1]))})
    table = pa.table({column: [values[column] for values in ROWS] for column in header})
    for name, content, first in (("mapped.xlsx", book, 2), ("mapped.parquet", parquet_bytes(table), 1)):
        path = tmp_path / name
        path.write_bytes(content)
        outcome = parse(path, options=UploadOptions(column_map=MAP))
        assert outcome.failure is None, name
        assert outcome.accepted == {first: contact("a@example.com", "Ann", "Lee", "2024-01-05")}, name
        assert outcome.rejected == {first + 1: [("email", "invalid_email")]}, name
        assert outcome.unknown_columns == [], name
