"""One file in byte ranges gives what one parser gives: the same rows, lines, errors and counts.

``ingestro.formats.boundaries`` plans the ranges, ``consumers.ranges`` parses each and sums the verdict;
here both run without servers, against ``parse_file`` of the whole file.
"""

from __future__ import annotations

import codecs
import gzip
from pathlib import Path
from typing import Any

import pytest

from consumers import ranges
from ingestro.domain import codec
from ingestro.domain.events import (
    Event,
    FileReceived,
    ParseCompleted,
    ParseFailed,
    RowsAccepted,
    RowsRejected,
    UploadOptions,
)
from ingestro.domain.limits import DEFAULT_LIMITS, Limits
from ingestro.formats import boundaries
from ingestro.formats.boundaries import RANGE_SEQ_BOUND, plan_ranges
from ingestro.formats.parsing import parse_file
from tests.parse_outcome import CONTACTS

BATCH = 7


def csv_text(rows: int, newline: str = "\r\n") -> str:
    """Contacts with an unknown multi-line, quoted ``notes`` column, JSON metadata, blank lines and bad rows."""
    lines = ["email,first_name,last_name,age,signup_date,metadata,notes"]
    for n in range(rows):
        if n % 11 == 3:
            lines.append(f"bad{n},A,B,-{n},2024-13-01,,plain")  # rejected: email, age, date
        elif n % 13 == 5:
            lines.append("")  # a blank line
            lines.append(f'p{n}@x.org,"Multi{newline}line",L,{n},2024-01-02,,"one ""two""{newline}{newline}three"')
        elif n % 7 == 2:
            lines.append(f'p{n}@x.org,Ann,"O,Neil",{n},01/02/2024,"{{""k"": ""v{n}\\nw""}}","x{newline}y"')
        elif n % 17 == 9:
            lines.append(f"p{n}@x.org,too,many,1,2024-01-01,,,,")  # rejected: field count
        else:
            lines.append(f"p{n}@x.org,Émile,Zoë,{n},2024-02-0{1 + n % 9},,")
    return newline.join(lines) + newline


def ndjson_text(rows: int) -> str:
    lines = []
    for n in range(rows):
        if n % 9 == 4:
            lines.append("{not json")
        elif n % 10 == 6:
            lines.append("   ")
        elif n % 8 == 1:
            lines.append(
                f'{{"email": "q{n}@x.org", "first_name": "A\\nB", "last_name": "C", "signup_date": "bad",'
                f' "x{n % 3}": 1}}'
            )
        else:
            lines.append(
                f'{{"email": "q{n}@x.org", "first_name": "Ünï", "last_name": "C", "signup_date": "2024-01-01"}}'
            )
    return "\r\n".join(lines) + "\n"


def gathered(events: list[Event]) -> tuple[dict[int, Any], dict[int, Any], Event]:
    """Accepted rows and rejected rows by line, and the verdict; every event through the codec."""
    accepted: dict[int, Any] = {}
    rejected: dict[int, Any] = {}
    for event in events[:-1]:
        assert codec.decode({key.encode(): value for key, value in codec.encode(event).items()}) == event
        if isinstance(event, RowsAccepted):
            for row in event.rows:
                assert row.line not in accepted
                accepted[row.line] = (row.content_hash, row.values)
        else:
            assert isinstance(event, RowsRejected)
            for rejected_row in event.rows:
                rejected[rejected_row.line] = (rejected_row.errors, rejected_row.raw)
    return accepted, rejected, events[-1]


def in_ranges(
    path: Path, file_format: str, range_bytes: int, options: UploadOptions = UploadOptions()
) -> tuple[list[Event], int]:
    plan = plan_ranges(path, file_format, options, DEFAULT_LIMITS, range_bytes, BATCH)
    assert plan is not None
    received = FileReceived("job", "contacts", path.name, "key", file_format, 0, "", "", options)
    outcomes: list[ranges.RangeOutcome] = []
    events: list[Event] = []
    for task in ranges.work(received, "1-0", plan):
        events.extend(ranges.range_events(task, path, CONTACTS, BATCH, DEFAULT_LIMITS, outcomes))
    return [*events, ranges.verdict("job", outcomes)], len(plan.ranges)


def assert_same_as_one_parser(path: Path, file_format: str, range_bytes: int) -> int:
    whole = list(parse_file("job", path, file_format, CONTACTS, BATCH, UploadOptions(), DEFAULT_LIMITS, "1-0"))
    split, count = in_ranges(path, file_format, range_bytes)
    accepted, rejected, verdict = gathered(split)
    assert (accepted, rejected) == gathered(whole)[:2]
    one = whole[-1]
    assert isinstance(one, ParseCompleted) and isinstance(verdict, ParseCompleted)
    assert (verdict.rows_total, verdict.rows_accepted, verdict.rows_rejected, verdict.unknown_columns) == (
        one.rows_total,
        one.rows_accepted,
        one.rows_rejected,
        one.unknown_columns,
    )
    # Batches: numbered in order across ranges, as many as announced, at most one more per range.
    for kind, announced, alone in (
        (RowsAccepted, verdict.accepted_batches, one.accepted_batches),
        (RowsRejected, verdict.rejected_batches, one.rejected_batches),
    ):
        seqs = [event.seq for event in split if isinstance(event, kind)]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == announced
        assert alone <= announced <= alone + count - 1
        assert max(seqs) < count * RANGE_SEQ_BOUND
    return count


@pytest.mark.parametrize("chunk", [64, 8 * 1024 * 1024])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8])
def test_csv_with_quoted_multiline_fields_in_ranges_is_what_one_parser_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, newline: str, bom: bytes
) -> None:
    monkeypatch.setattr(boundaries, "_CHUNK", chunk)
    path = tmp_path / "contacts.csv"
    path.write_bytes(bom + csv_text(400, newline).encode())
    # Small ranges: many cuts, most targets land inside a multi-line record or a quoted field.
    for range_bytes in (150, 997, 5000):
        assert assert_same_as_one_parser(path, "csv", range_bytes) > 2


def test_ndjson_in_ranges_is_what_one_parser_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boundaries, "_CHUNK", 100)
    path = tmp_path / "contacts.ndjson"
    path.write_bytes(codecs.BOM_UTF8 + ndjson_text(300).encode())
    for range_bytes in (90, 1000, 4000):
        assert assert_same_as_one_parser(path, "ndjson", range_bytes) > 2


def test_a_failing_header_fails_the_job_as_one_parser_does(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("email,first_name\n" + "a@x.org,A\n" * 200)
    split, _ = in_ranges(path, "csv", 100)
    (whole,) = parse_file("job", path, "csv", CONTACTS, BATCH)
    assert split == [whole] and isinstance(whole, ParseFailed) and whole.line == 1


def test_the_verdict_is_the_first_failing_range_s() -> None:
    outcomes = [
        ranges.RangeOutcome(10, 9, 1, 2, 1, ["a"]),
        ranges.RangeOutcome(5, 5, 0, 1, 0, [], "broken", 42),
        ranges.failed("later"),
    ]
    assert ranges.verdict("job", outcomes) == ParseFailed("job", "broken", 42, 15, 3, 1)


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "file_format", "options", "limits"),
    [
        # A quote inside an unquoted field is literal to the csv module: quote parity cannot be trusted.
        (
            "literal.csv",
            csv_text(300).encode() + b'p@x.org,5" disk,L,1,2024-01-01,,\n',
            "csv",
            UploadOptions(),
            DEFAULT_LIMITS,
        ),
        ("multiline-header.csv", b'email,"first\nname"\n' + b"a,b\n" * 300, "csv", UploadOptions(), DEFAULT_LIMITS),
        ("cr.csv", csv_text(300, "\r").encode(), "csv", UploadOptions(), DEFAULT_LIMITS),
        ("gzip.csv", gzip.compress(csv_text(300).encode()), "csv", UploadOptions(compression="gzip"), DEFAULT_LIMITS),
        ("array.json", b"[" + b'{"email": "a"},' * 300 + b"{}]", "json", UploadOptions(), DEFAULT_LIMITS),
        ("threshold.csv", csv_text(300).encode(), "csv", UploadOptions(max_errors=1000), DEFAULT_LIMITS),
        ("latin1.csv", csv_text(300).encode("utf-8"), "csv", UploadOptions(encoding="latin-1"), DEFAULT_LIMITS),
        (
            "undecodable.csv",
            csv_text(300).encode() + b"a\xff@x.org,A,B,1,2024-01-01,,\n",
            "csv",
            UploadOptions(),
            DEFAULT_LIMITS,
        ),
        ("utf16.csv", csv_text(300).encode("utf-16"), "csv", UploadOptions(), DEFAULT_LIMITS),
        ("nul.ndjson", ndjson_text(300).encode() + b'{"email": "\x00"}\n', "ndjson", UploadOptions(), DEFAULT_LIMITS),
        # The readers restart a record after a line or a record past the limits: parity could break there.
        ("long-line.csv", csv_text(300).encode(), "csv", UploadOptions(), Limits(line_chars=60)),
        ("long-record.csv", csv_text(300).encode(), "csv", UploadOptions(), Limits(row_chars=40)),
    ],
)
def test_what_cannot_be_cut_provably_stays_on_one_parser(
    tmp_path: Path, name: str, content: bytes, file_format: str, options: UploadOptions, limits: Limits
) -> None:
    path = write(tmp_path, name, content)
    assert plan_ranges(path, file_format, options, limits, 100, BATCH) is None
    # ...and without the offending part (or option), the same file is cut.
    if name in {"literal.csv", "undecodable.csv", "nul.ndjson", "threshold.csv"}:
        good = write(
            tmp_path, "good-" + name, csv_text(300).encode() if file_format == "csv" else ndjson_text(300).encode()
        )
        assert plan_ranges(good, file_format, UploadOptions(), limits, 100, BATCH) is not None


def test_a_small_file_or_no_range_size_is_one_range(tmp_path: Path) -> None:
    path = write(tmp_path, "small.csv", csv_text(50).encode())
    size = path.stat().st_size
    assert plan_ranges(path, "csv", UploadOptions(), DEFAULT_LIMITS, size // 2 + 1, BATCH) is None
    assert plan_ranges(path, "csv", UploadOptions(), DEFAULT_LIMITS, 0, BATCH) is None
    assert plan_ranges(path, "csv", UploadOptions(), DEFAULT_LIMITS, size // 3, BATCH) is not None
