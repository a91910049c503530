"""XLSX and Parquet through the real pipeline: upload -> parser -> projections -> completed, with exact counts
and rows in the dataset's table; and the upload's detection of them by name, media type and first bytes."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

from ingestro.cli.client import upload_files
from ingestro.cli.main import build_parser
from tests.stack import Stack
from tests.test_api import assert_problem
from tests.test_xlsx_parquet import contacts_table, contacts_workbook, parquet_bytes
from tests.workbooks import CONTACTS_HEADER, Dated, header_row, row, sheet, workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


async def _rows(stack: Stack) -> dict[str, tuple[object, ...]]:
    records = await stack.pool.fetch("SELECT email, first_name, age, signup_date, metadata, id FROM contacts")
    return {record["email"]: tuple(record.values())[1:] for record in records}


async def test_an_xlsx_upload_completes_with_exact_counts_and_typed_rows(stack: Stack) -> None:
    stack.start_consumers()
    response = await stack.client.post(
        "/upload", content=contacts_workbook(), headers={"content-type": XLSX}, params={"filename": "people.xlsx"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["format"] == "xlsx"
    job = await stack.wait_for_job(response.json()["job_id"])
    assert job["status"] == "completed", job
    assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"], job["rows_inserted"]) == (3, 2, 1, 2)
    assert await _rows(stack) == {
        "ada@example.com": ("Ada", 36, dt.date(2024, 1, 5), None, "c-1"),
        "grace@example.com": ("Grace", None, dt.date(2024, 1, 6), None, "c-2"),
    }
    errors = (await stack.client.get(f"/jobs/{job['job_id']}/errors")).json()["items"]
    assert [(item["line"], [error["code"] for error in item["errors"]]) for item in errors] == [
        (6, ["invalid_email", "invalid_integer"])
    ]


async def test_a_parquet_upload_told_by_its_first_bytes_completes_with_exact_counts(stack: Stack) -> None:
    stack.start_consumers()
    response = await stack.client.post(
        "/upload", content=parquet_bytes(contacts_table()), headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["format"] == "parquet"
    job = await stack.wait_for_job(response.json()["job_id"])
    assert job["status"] == "completed", job
    assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (3, 2, 1)
    assert job["unknown_columns"] == ["extra"]
    rows = await _rows(stack)
    assert rows["grace@example.com"] == ("Grace", None, dt.date(2024, 1, 6), None, "c-2")
    ada = rows["ada@example.com"]
    assert ada[:3] == ("Ada", 36, dt.date(2024, 1, 5)) and _json(ada[3]) == {"team": "a", "n": 1}


async def test_a_sheet_named_by_the_upload_is_read_and_a_missing_one_fails_the_job(stack: Stack) -> None:
    stack.start_consumers()
    content = workbook(
        {
            "Cover": sheet(row(1, "title")),
            "Data": sheet(header_row(), row(2, "ada@example.com", "Ada", "L", None, Dated(45296))),
        },
        shared=CONTACTS_HEADER,
    )
    files = {"file": ("book.xlsx", content, "application/octet-stream")}
    picked = await stack.client.post("/upload", files=files, params={"sheet": "Data"})
    job = await stack.wait_for_job(picked.json()["job_id"])
    assert (job["status"], job["rows_inserted"]) == ("completed", 1), job
    missing = await stack.client.post("/upload", files=files, params={"sheet": "Nope"})
    failed = await stack.wait_for_job(missing.json()["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"] == "the workbook has no sheet named 'Nope'; its sheets: 'Cover', 'Data'"


async def test_an_encrypted_workbook_fails_its_job_with_the_reason(stack: Stack) -> None:
    stack.start_consumers()
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "EncryptedPackage".encode("utf-16-le") + bytes(100)
    response = await stack.client.post("/upload", content=ole, headers={"content-type": "application/octet-stream"})
    job = await stack.wait_for_job(response.json()["job_id"])
    assert job["status"] == "failed" and "password-protected" in job["error"], job


async def test_a_bad_sheet_option_and_an_unknown_binary_body_are_refused(stack: Stack) -> None:
    too_long = await stack.client.post(
        "/upload", content=contacts_workbook(), headers={"content-type": XLSX}, params={"sheet": "x" * 32}
    )
    assert_problem(too_long, 400)
    unknown = await stack.client.post(
        "/upload", content=b"\x00\x01binary", headers={"content-type": "application/octet-stream"}
    )
    assert_problem(unknown, 415)


async def test_a_sheet_option_for_a_file_that_is_not_xlsx_is_refused_and_nothing_is_stored(stack: Stack) -> None:
    sniffed_parquet = await stack.client.post(
        "/upload",
        content=parquet_bytes(contacts_table()),
        headers={"content-type": "application/octet-stream"},
        params={"sheet": "Data"},
    )
    assert assert_problem(sniffed_parquet, 400)["detail"] == "sheet is only for XLSX workbooks; this file is parquet"
    raw_csv = await stack.client.post(
        "/upload", content=b"email\n", headers={"content-type": "text/csv"}, params={"sheet": "Data"}
    )
    assert assert_problem(raw_csv, 400)["detail"] == "sheet is only for XLSX workbooks; this file is csv"
    multipart = await stack.client.post(
        "/upload", files={"file": ("people.json", b"[]", "application/json")}, params={"sheet": "Data"}
    )
    assert assert_problem(multipart, 400)["detail"] == "sheet is only for XLSX workbooks; this file is json"
    imported = await stack.client.post(
        "/imports", json={"source": "https://example.com/people.csv"}, params={"sheet": "Data"}
    )
    assert assert_problem(imported, 400)["detail"] == "sheet is only for XLSX workbooks; this file is csv"
    assert (await stack.pool.fetchval("SELECT count(*) FROM jobs")) == 0


async def test_the_cli_uploads_a_workbooks_named_sheet_and_a_parquet_file(stack: Stack, tmp_path: Path) -> None:
    stack.start_consumers()
    book, table = tmp_path / "book.xlsx", tmp_path / "people.parquet"
    book.write_bytes(
        workbook(
            {
                "Cover": sheet(row(1, "title")),
                "Data": sheet(header_row(), row(2, "ada@example.com", "Ada", "L", None, Dated(45296))),
            },
            shared=CONTACTS_HEADER,
        )
    )
    table.write_bytes(parquet_bytes(contacts_table(2)))
    out = io.StringIO()
    assert await upload_files(stack.client, [book, table], "contacts", True, out, sheet="Data") == 0
    summary = [line.split() for line in out.getvalue().splitlines()[3:5]]
    assert [(line[0], line[2:6]) for line in summary] == [
        ("book.xlsx", ["completed", "1", "1", "0"]),
        ("people.parquet", ["completed", "2", "2", "0"]),
    ]
    assert build_parser().parse_args(["upload", "x.xlsx", "--sheet", "Data"]).sheet == "Data"
