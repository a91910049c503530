"""The XLSX and Parquet readers: typed cells into the dataset's rows, sheet rows and row numbers as lines,
and every hostile or broken file failed with its reason (files generated: tests/workbooks.py, pyarrow)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestro.domain.events import UploadOptions
from ingestro.domain.limits import Limits
from tests.parse_outcome import Outcome, contact, parse
from tests.workbooks import (
    CONTACTS_HEADER,
    Dated,
    Formula,
    Raw,
    crc_broken_workbook,
    header_row,
    row,
    sheet,
    workbook,
)

ADA = contact("ada@example.com", "Ada", "Lovelace", "2024-01-05", age=36, id="c-1")
GRACE = contact("grace@example.com", "Grace", "Hopper", "2024-01-06", id="c-2")
#: 2024-01-05 and 2024-01-06 as Excel's 1900 serials.
JAN_5, JAN_6 = 45296, 45297


def parsed(tmp_path: Path, content: bytes, suffix: str = ".xlsx", **kwargs: Any) -> Outcome:
    path = tmp_path / f"file{suffix}"
    path.write_bytes(content)
    return parse(path, **kwargs)


def contacts_workbook(**kwargs: Any) -> bytes:
    return workbook(
        {
            "Contacts": sheet(
                header_row(),
                row(2, "Ada@Example.com", "Ada", "Lovelace", 36, Dated(JAN_5), None, Formula('="c-"&1', "c-1")),
                row(3),  # an empty row
                row(5, "grace@example.com", "Grace", "Hopper", None, Dated(JAN_6), None, "c-2"),
                row(6, "not an email", "Bad", "Row", 1.5, Dated(JAN_6)),
                after='<mergeCells count="1"><mergeCell ref="B5:C5"/></mergeCells>',
            )
        },
        shared=CONTACTS_HEADER,
        **kwargs,
    )


# ------------------------------------------------------------------ XLSX


def test_a_sheet_gives_its_rows_typed_with_sheet_rows_as_lines(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, contacts_workbook())
    assert outcome.failure is None
    assert outcome.accepted == {2: ADA, 5: GRACE}
    assert outcome.rejected == {6: [("email", "invalid_email"), ("age", "invalid_integer")]}
    assert outcome.rows_total == 3


def test_the_1904_epoch_and_datetimes_and_times_of_day(tmp_path: Path) -> None:
    from ingestro.datasets import parse_declaration

    dataset = parse_declaration(
        b'{"name": "moments", "fields": [{"name": "day", "type": "date", "formats": ["%d.%m.%Y"]},'
        b' {"name": "at", "type": "datetime"}, {"name": "label", "type": "string"},'
        b' {"name": "ok", "type": "boolean"}, {"name": "total", "type": "number"}]}',
        "json",
    )
    content = workbook(
        {
            "S": sheet(
                row(1, "day", "at", "label", "ok", "total"),
                # 1904: serial 0 is 1904-01-01; a date cell in a date field with `formats` is taken as a date.
                row(2, Dated(43829), Dated(43829.5, style=2), Dated(0.25), True, 12.50),
                row(
                    3,
                    None,
                    None,
                    Raw('<c r="{ref}" t="e"><v>#DIV/0!</v></c>'),
                    False,
                    Raw('<c r="{ref}"><v>1E-3</v></c>'),
                ),
            )
        },
        date1904=True,
    )
    outcome = parsed(tmp_path, content, dataset=dataset)
    assert outcome.failure is None, outcome.failure
    day = dt.date(1904, 1, 1) + dt.timedelta(days=43829)
    assert outcome.accepted[2] == {
        "day": day.isoformat(),
        "at": f"{day.isoformat()}T12:00:00+00:00",
        "label": "06:00:00",
        "ok": True,
        "total": "12.5",
    }
    assert outcome.accepted[3] == {"day": None, "at": None, "label": "#DIV/0!", "ok": False, "total": "0.001"}


def test_the_sheet_option_picks_a_sheet_by_name_and_an_absent_one_fails_naming_the_sheets(tmp_path: Path) -> None:
    content = workbook(
        {
            "Notes": sheet(row(1, "nothing here")),
            "Data": sheet(header_row(), row(2, "ada@example.com", "Ada", "Lovelace", None, Dated(JAN_5))),
        },
        shared=CONTACTS_HEADER,
    )
    outcome = parsed(tmp_path, content, options=UploadOptions(sheet="Data"))
    assert outcome.accepted == {2: contact("ada@example.com", "Ada", "Lovelace", "2024-01-05")}
    failed = parsed(tmp_path, content, options=UploadOptions(sheet="Missing"))
    assert failed.failure == ("the workbook has no sheet named 'Missing'; its sheets: 'Notes', 'Data'", None)
    first = parsed(tmp_path, content)  # the first sheet lacks the required columns
    assert first.failure is not None and "header lacks required columns" in first.failure[0]


def test_leading_empty_rows_empty_header_cells_and_trailing_columns_are_no_columns(tmp_path: Path) -> None:
    content = workbook(
        {
            "S": sheet(
                row(3, *CONTACTS_HEADER[:3], None, CONTACTS_HEADER[4], ""),
                row(4, "ada@example.com", "Ada", "Lovelace", "under no header", Dated(JAN_5)),
            )
        }
    )
    outcome = parsed(tmp_path, content)
    assert outcome.failure is None and outcome.unknown_columns == []
    assert outcome.accepted == {4: contact("ada@example.com", "Ada", "Lovelace", "2024-01-05")}


def test_a_formula_never_calculated_is_empty_and_a_cell_past_the_field_limit_rejects_its_row(tmp_path: Path) -> None:
    content = workbook(
        {
            "S": sheet(
                header_row(),
                row(2, "ada@example.com", "Ada", "Lovelace", None, Dated(JAN_5), None, Formula("=A1", None)),
                row(3, "grace@example.com", "Grace", "x" * 300, None, Dated(JAN_6)),
            )
        },
        shared=CONTACTS_HEADER,
    )
    outcome = parsed(tmp_path, content, limits=Limits(field_chars=200))
    assert outcome.accepted == {2: contact("ada@example.com", "Ada", "Lovelace", "2024-01-05")}
    assert outcome.rejected == {3: [(None, "field_too_large")]}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"email,first_name\n", "not an XLSX workbook (not a readable zip archive)"),
        (contacts_workbook()[:-200], "not an XLSX workbook (not a readable zip archive)"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "EncryptedPackage".encode("utf-16-le") + bytes(100),
            "the workbook is password-protected (encrypted): save it without a password",
        ),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "an OLE compound file (a legacy .xls?)"),
        (
            workbook({"S": '<!DOCTYPE x [<!ENTITY a "aaaa">]><worksheet><sheetData/></worksheet>'}),
            "the workbook holds a DTD",
        ),
        (workbook({"S": "<worksheet><sheetData><row r='1'>"}), "is not well-formed XML"),
    ],
)
def test_what_is_not_a_readable_workbook_fails_with_the_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    outcome = parsed(tmp_path, content)
    assert outcome.failure is not None and reason in outcome.failure[0], outcome.failure


def test_a_corrupt_sheet_fails_with_the_rows_before_it_kept(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, crc_broken_workbook())
    assert outcome.failure is not None and "corrupt" in outcome.failure[0], outcome.failure


def test_a_zip_bomb_fails_past_the_ratio_and_the_inflated_size(tmp_path: Path) -> None:
    padding = " " * (8 * 1024 * 1024)
    bomb = workbook({"S": sheet(header_row(), Raw(padding).xml)}, shared=CONTACTS_HEADER)
    assert len(bomb) < 100_000
    outcome = parsed(tmp_path, bomb)
    assert outcome.failure is not None and "decompression bomb" in outcome.failure[0]
    capped = parsed(tmp_path, bomb, limits=Limits(decompressed_bytes=1_000_000, compression_ratio=10_000))
    assert capped.failure == ("the workbook inflates past the limit of 1000000 bytes", None)


def test_a_huge_shared_string_table_fails_past_its_bound(tmp_path: Path) -> None:
    content = workbook({"S": sheet(header_row())}, shared=CONTACTS_HEADER + [f"s{n}" for n in range(100)])
    outcome = parsed(tmp_path, content, limits=Limits(shared_strings_bytes=5_000))
    assert outcome.failure == ("the workbook's shared strings take more than the limit of 5000 bytes", None)


def test_gzip_around_a_workbook_fails_with_the_reason(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, contacts_workbook(), options=UploadOptions(compression="gzip"))
    assert outcome.failure == ("a xlsx file is compressed inside already: upload it without gzip", None)


# ------------------------------------------------------------------ Parquet


def contacts_table(rows: int = 3) -> pa.Table:
    return pa.table(
        {
            "Email": pa.array(["ada@example.com", "grace@example.com", "nope"][:rows]),
            "first_name": pa.array(["Ada", "Grace", "X"][:rows]),
            "last_name": pa.array(["Lovelace", "Hopper", "Y"][:rows]),
            "age": pa.array([36, None, -1][:rows], pa.int64()),
            "signup_date": pa.array([dt.date(2024, 1, 5), dt.date(2024, 1, 6), dt.date(2024, 1, 7)][:rows]),
            "metadata": pa.array([{"team": "a", "n": 1}, None, {"team": "c", "n": 3}][:rows]),
            "id": pa.array([b"c-1", b"c-2", b"\xff"][:rows], pa.binary()),
            "extra": pa.array([1, 2, 3][:rows]),
        }
    )


def parquet_bytes(table: pa.Table, row_group_size: int = 2) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return bytes(sink.getvalue().to_pybytes())


def test_parquet_rows_are_typed_and_numbered_across_row_groups(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, parquet_bytes(contacts_table()), ".parquet")
    assert outcome.failure is None
    assert outcome.accepted == {
        1: contact(
            "ada@example.com", "Ada", "Lovelace", "2024-01-05", age=36, metadata={"team": "a", "n": 1}, id="c-1"
        ),
        2: contact("grace@example.com", "Grace", "Hopper", "2024-01-06", id="c-2"),
    }
    assert outcome.rejected == {3: [(None, "invalid_encoding")]}
    assert outcome.unknown_columns == ["extra"]
    assert outcome.rows_total == 3


def test_parquet_decimals_are_exact_and_a_bad_value_rejects_its_row_only(tmp_path: Path) -> None:
    from decimal import Decimal

    table = (
        contacts_table(2)
        .drop_columns(["id"])
        .append_column("id", pa.array([Decimal("1.10"), Decimal("2.00")], pa.decimal128(5, 2)))
    )
    outcome = parsed(tmp_path, parquet_bytes(table), ".parquet")
    assert outcome.accepted[1]["id"] == "1.10" and outcome.accepted[2]["id"] == "2.00"


def _pages_zeroed(data: bytes) -> bytes:
    """The file with its footer (schema, row groups) intact and every data page zeroed."""
    footer = int.from_bytes(data[-8:-4], "little") + 8
    return data[:4] + bytes(len(data) - 4 - footer) + data[-footer:]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda data: b"email\nada@example.com\n", "not a readable Parquet file"),
        (lambda data: data[:-20], "not a readable Parquet file"),
        (_pages_zeroed, "the Parquet file is corrupt in row group 0"),
    ],
)
def test_what_is_not_a_readable_parquet_file_fails_with_the_reason(tmp_path: Path, mangle: Any, reason: str) -> None:
    outcome = parsed(tmp_path, mangle(parquet_bytes(contacts_table(), row_group_size=3)), ".parquet")
    assert outcome.failure is not None and reason in outcome.failure[0], outcome.failure


def test_a_parquet_row_group_past_its_bound_fails_before_it_is_read(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, parquet_bytes(contacts_table()), ".parquet", limits=Limits(row_group_bytes=10))
    assert outcome.failure is not None
    assert outcome.failure[0].startswith("row group 0 holds") and outcome.failure[1] == 1
    assert outcome.accepted == {}


def test_a_parquet_schema_lacking_required_columns_fails_like_a_csv_header(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, parquet_bytes(contacts_table().drop_columns(["Email"])), ".parquet")
    assert outcome.failure == ("header lacks required columns: email", 1)
