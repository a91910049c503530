"""Writes the binary corpus files (tests/corpus/xlsx/, tests/corpus/parquet/): run it from the repository root,

    .venv/bin/python -m tests.corpus.make_binary

after changing what a file holds, and commit what it writes. It reproduces the same bytes on every run:
the workbooks (tests/workbooks.py) give every zip entry one fixed timestamp, and Parquet files are
written by pyarrow with no time in them (its version is in each file's footer: another pyarrow may
write other bytes, then re-run this and commit). tests/test_corpus.py checks the committed files
are what this writes, and what each must give.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.workbooks import (
    CONTACTS_HEADER,
    Dated,
    Formula,
    Raw,
    Shared,
    crc_broken_workbook,
    header_row,
    row,
    sheet,
    workbook,
)

HERE = Path(__file__).parent
#: 2024-01-05 as Excel's 1900 serial; the 1904 epoch counts 1462 days fewer.
JAN_5 = 45296
EPOCH_1904_DAYS = 1462
#: The declared dataset of the typed sheets (tests/test_corpus.py declares it).
TYPED_HEADER = ["day", "at", "flag", "total", "count", "note"]


def _contacts() -> bytes:
    """A contacts sheet as Excel writes one: a formula with its cached value, an empty row, merged cells
    (the value in the first cell only), trailing empty columns and rows, and a <dimension> wider than the data."""
    return workbook(
        {
            "Contacts": sheet(
                row(1, *(Shared(index) for index in range(len(CONTACTS_HEADER))), "", None, ""),
                row(
                    2,
                    "Ada@Example.com",
                    "Ada",
                    "Lovelace",
                    36,
                    Dated(JAN_5),
                    '{"tags": ["a"]}',
                    Formula('="c-"&1', "c-1"),
                    "",
                ),
                row(3),
                # first_name is merged over B4:C4: Excel keeps the value in B4, so last_name is empty.
                row(4, "grace@example.com", "Grace Hopper", None, None, Dated(JAN_5 + 1), None, "c-2"),
                row(5, "alan@example.com", "Alan", "Turing", 41, Dated(JAN_5 + 2), None, Formula("=A1", None)),
                row(6, None, None, None, None, None, None, None, ""),
                row(7, ""),
                after='<mergeCells count="1"><mergeCell ref="B4:C4"/></mergeCells>',
            ).replace("<sheetData>", '<dimension ref="A1:Z99"/><sheetData>')
        },
        shared=CONTACTS_HEADER,
    )


def _typed(date1904: bool) -> bytes:
    """Dates, a datetime, booleans, numbers and an error value, with serials for the workbook's epoch; row 3's
    date is serial 60 in 1900 (the 1900-02-29 Excel counts and the calendar has not), 1904-01-02 in 1904."""
    shift = EPOCH_1904_DAYS if date1904 else 0
    return workbook(
        {
            "Typed": sheet(
                row(1, *TYPED_HEADER),
                row(2, Dated(JAN_5 - shift), Dated(JAN_5 - shift + 0.75, style=2), True, 12.5, 7, "plain"),
                row(3, Dated(1 if date1904 else 60), None, False, Raw('<c r="{ref}"><v>1E-3</v></c>'), -3, None),
                row(4, None, None, None, None, 2.5, Raw('<c r="{ref}" t="e"><v>#DIV/0!</v></c>')),
            )
        },
        date1904=date1904,
    )


def _two_sheets() -> bytes:
    return workbook(
        {
            "Cover": sheet(row(1, "People, exported 2024-01-05")),
            "Data": sheet(header_row(), row(2, "ada@example.com", "Ada", "Lovelace", 36, Dated(JAN_5), None, "c-1")),
        },
        shared=CONTACTS_HEADER,
    )


def _zip_bomb() -> bytes:
    """A valid workbook whose sheet inflates to 4 MiB of spaces: over 1000 times its stored size."""
    return workbook({"S": sheet(header_row(), Raw(" " * (4 * 1024 * 1024)).xml)}, shared=CONTACTS_HEADER)


def _shared_strings() -> bytes:
    """A shared-string table of 2,000 strings (about 140 KB held): within the default limit, past a small one."""
    strings = CONTACTS_HEADER + [f"string {n}" for n in range(2_000)]
    return workbook(
        {"S": sheet(header_row(), row(2, "ada@example.com", Shared(7), Shared(2006), None, Dated(JAN_5)))},
        shared=strings,
    )


def _encrypted() -> bytes:
    """What Excel writes for a password-protected workbook: an OLE compound file holding an EncryptedPackage stream.

    Only its shape: the OLE header, and a directory sector naming the streams Excel writes."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
    header = header.ljust(512, b"\x00")
    entries = b""
    for name in ("Root Entry", "EncryptionInfo", "EncryptedPackage"):
        encoded = (name + "\0").encode("utf-16-le")
        entries += (encoded.ljust(64, b"\x00") + len(encoded).to_bytes(2, "little")).ljust(128, b"\x00")
    return header + entries.ljust(512, b"\x00") + bytes(1024)


def _dtd() -> bytes:
    """A billion-laughs DTD in the sheet part."""
    laughs = '<!DOCTYPE worksheet [<!ENTITY a "haha">' + "".join(
        f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(8)
    )
    return workbook(
        {
            "S": laughs + ']><worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&i;</t></is></c>'
            "</row></sheetData></worksheet>"
        }
    )


def _contacts_table() -> pa.Table:
    return pa.table(
        {
            "email": pa.array(["ada@example.com", "grace@example.com", "alan@example.com", "x@example.com"]),
            "first_name": pa.array(["Ada", "Grace", "Alan", "X"]),
            "last_name": pa.array(["Lovelace", "Hopper", "Turing", "Y"]),
            "age": pa.array([36, None, 41, 200], pa.int32()),
            "signup_date": pa.array([dt.date(2024, 1, 5), dt.date(2024, 1, 6), dt.date(2024, 1, 7), None]),
            # A nested column for the dataset's `json` field: a struct holding a list.
            "metadata": pa.array(
                [{"team": "a", "tags": ["x", "y"]}, None, {"team": "c", "tags": []}, {"team": None, "tags": None}]
            ),
            "id": pa.array(["c-1", "c-2", "c-3", "c-4"]),
        }
    )


def _parquet(table: pa.Table, row_group_size: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return bytes(sink.getvalue().to_pybytes())


def _pages_zeroed(data: bytes) -> bytes:
    """``data`` with its footer (schema, row groups) intact and every data page zeroed."""
    footer = int.from_bytes(data[-8:-4], "little") + 8
    return data[:4] + bytes(len(data) - 4 - footer) + data[-footer:]


def _nested_map() -> bytes:
    """metadata as a map of lists: a JSON list of [key, value] pairs."""
    table = pa.table(
        {
            "email": pa.array(["ada@example.com"]),
            "first_name": pa.array(["Ada"]),
            "last_name": pa.array(["Lovelace"]),
            "signup_date": pa.array([dt.date(2024, 1, 5)]),
            "metadata": pa.array([[("scores", [1, 2]), ("none", None)]], pa.map_(pa.string(), pa.list_(pa.int64()))),
        }
    )
    return _parquet(table, 1)


def build() -> dict[str, bytes]:
    """Each corpus file's path (under tests/corpus/) and bytes."""
    contacts = _contacts()
    table = _parquet(_contacts_table(), 2)
    return {
        "xlsx/contacts.xlsx": contacts,
        "xlsx/typed_1900.xlsx": _typed(False),
        "xlsx/typed_1904.xlsx": _typed(True),
        "xlsx/two_sheets.xlsx": _two_sheets(),
        "xlsx/zip_bomb.xlsx": _zip_bomb(),
        "xlsx/shared_strings.xlsx": _shared_strings(),
        "xlsx/encrypted.xlsx": _encrypted(),
        "xlsx/truncated.xlsx": contacts[: len(contacts) // 2],
        "xlsx/dtd.xlsx": _dtd(),
        "xlsx/stored_corrupt.xlsx": crc_broken_workbook(),
        "parquet/contacts.parquet": table,
        "parquet/nested_map.parquet": _nested_map(),
        "parquet/truncated.parquet": table[:-20],
        "parquet/corrupt_pages.parquet": _pages_zeroed(_parquet(_contacts_table(), 4)),
    }




def main() -> None:
    for name, content in build().items():
        path = HERE / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        print(f"{name}: {len(content)} bytes")


if __name__ == "__main__":
    main()
