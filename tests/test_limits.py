"""Specification of the limits and upload options at the parse level: what a hostile or odd file comes to.

A row past a row-level limit is rejected with its code and the file goes on; a file
past a file-level limit fails with the reason; past the upload's error threshold the
parse stops with the reason, and the rows before it stand.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from ingestro.domain.events import UploadOptions
from ingestro.domain.limits import Limits
from ingestro.formats.source import storable
from tests.parse_outcome import Outcome, parse

HEADER = b"email,first_name,last_name,signup_date\n"


def row(index: int, first_name: str = "Ada") -> bytes:
    return f"u{index}@example.com,{first_name},Lovelace,2024-01-05\n".encode()


def parse_bytes(
    tmp_path: Path,
    content: bytes,
    suffix: str = ".csv",
    options: UploadOptions = UploadOptions(),
    limits: Limits = Limits(),
) -> Outcome:
    path = tmp_path / f"upload{suffix}"
    path.write_bytes(content)
    return parse(path, options=options, limits=limits)


# ------------------------------------------------------------------ row-level limits (CSV)


def test_a_line_past_the_line_limit_is_rejected_and_the_next_line_read(tmp_path: Path) -> None:
    content = HEADER + row(1) + row(2, "x" * 500) + row(3)
    outcome = parse_bytes(tmp_path, content, limits=Limits(line_chars=100))
    assert list(outcome.accepted) == [2, 4]
    assert outcome.rejected == {3: [(None, "line_too_long")]}
    assert outcome.raw[3] is None  # the line was never held whole


@pytest.mark.parametrize("line_break", [b"\n", b"\r\n", b"\r"])
def test_after_a_too_long_line_the_line_numbers_stay_physical(tmp_path: Path, line_break: bytes) -> None:
    rows = [HEADER, row(1), row(2, "x" * 500), b"\n", row(3)]
    content = b"".join(line.replace(b"\n", line_break) for line in rows)
    outcome = parse_bytes(tmp_path, content, limits=Limits(line_chars=100))
    assert list(outcome.accepted) == [2, 5]
    assert list(outcome.rejected) == [3]


def test_a_line_exactly_at_the_limit_is_read_whatever_its_line_break(tmp_path: Path) -> None:
    line = row(1).rstrip(b"\n")
    for line_break in (b"\n", b"\r\n", b"\r"):
        content = HEADER.replace(b"\n", line_break) + line + line_break + row(2).replace(b"\n", line_break)
        outcome = parse_bytes(tmp_path, content, limits=Limits(line_chars=len(line)))
        assert (list(outcome.accepted), outcome.rejected) == ([2, 3], {}), line_break


def test_a_record_past_the_row_limit_is_rejected(tmp_path: Path) -> None:
    # An unclosed quote would swallow the rest of the file into one field: the row limit stops it.
    content = HEADER + b'u1@example.com,"Ada' + b"\nmore text" * 50 + b'",Lovelace,2024-01-05\n'
    outcome = parse_bytes(tmp_path, content, limits=Limits(row_chars=200))
    assert outcome.rejected[2] == [(None, "row_too_large")]
    assert outcome.failure is None


def test_a_field_past_the_field_limit_rejects_its_row_naming_the_field(tmp_path: Path) -> None:
    content = HEADER + row(1) + row(2, "y" * 50) + row(3)
    outcome = parse_bytes(tmp_path, content, limits=Limits(field_chars=40))
    assert list(outcome.accepted) == [2, 4]
    assert outcome.rejected == {3: [("first_name", "field_too_large")]}
    assert outcome.messages[3] == ["column 'first_name' has 50 characters, more than the limit of 40"]
    assert outcome.raw[3]["first_name"] == "y" * 40 + "…"  # the stored raw row is cut too


def test_a_header_wider_than_the_column_limit_fails_the_file(tmp_path: Path) -> None:
    header = HEADER.rstrip(b"\n") + b"".join(b",extra%d" % i for i in range(20)) + b"\n"
    outcome = parse_bytes(tmp_path, header + row(1), limits=Limits(columns=10))
    assert outcome.failure == ("the header has 24 columns, more than the limit of 10", 1)


def test_a_header_past_the_line_limit_fails_the_file(tmp_path: Path) -> None:
    outcome = parse_bytes(tmp_path, b"email," + b"x" * 500 + b"\n", limits=Limits(line_chars=100))
    assert outcome.failure == ("the header is longer than the line or row limit", 1)


def test_a_header_with_undecodable_bytes_fails_the_file_and_suggests_an_encoding(tmp_path: Path) -> None:
    outcome = parse_bytes(tmp_path, b"email,first_n\xe4me,last_name,signup_date\n" + row(1))
    assert outcome.failure == (
        "the header has bytes that do not decode at byte 13; pass ?encoding= if the file is not UTF-8",
        1,
    )


def test_unknown_column_names_are_shown_cut_and_clean(tmp_path: Path) -> None:
    header = HEADER.rstrip(b"\n") + b",\x00" + b"z" * 300 + b"\n"
    outcome = parse_bytes(tmp_path, header + row(1).rstrip(b"\n") + b",x\n")
    assert outcome.unknown_columns == ["\ufffd" + "z" * 199 + "…"]


# ------------------------------------------------------------------ row-level limits (JSON)


def json_row(extra: str = "") -> str:
    return '{"email": "a@example.com", "first_name": "A", "last_name": "B", "signup_date": "2024-01-05"' + extra + "}"


@pytest.mark.parametrize("suffix", [".json", ".ndjson"])
def test_json_rows_past_the_limits_are_rejected_and_reading_goes_on(tmp_path: Path, suffix: str) -> None:
    rows = [
        json_row(),
        json_row(', "metadata": {"a": {"b": {"c": {}}}}'),  # depth 5
        json_row(', "id": "%s"' % ("s" * 100)),  # a string past 80
        json_row("".join(f', "k{i}": {i}' for i in range(20))),  # 24 keys
        json_row(', "metadata": {"note": "%s"}' % ("n" * 100)),  # a nested string past 80
        json_row(),
    ]
    content = ("[" + ",\n".join(rows) + "]" if suffix == ".json" else "\n".join(rows) + "\n").encode()
    outcome = parse_bytes(tmp_path, content, suffix, limits=Limits(json_depth=4, field_chars=80, columns=20))
    assert list(outcome.accepted) == [1, 6]
    assert outcome.rejected == {
        2: [(None, "too_deep")],
        3: [(None, "field_too_large")],
        4: [(None, "too_many_columns")],
        5: [(None, "field_too_large")],
    }


def test_a_json_element_past_the_row_limit_is_skipped_and_the_array_read_on(tmp_path: Path) -> None:
    big = json_row(', "metadata": {"a": ["%s", {"b": "]}\\"["}]}' % ("x" * 300_000))
    content = ("[" + ",".join([json_row(), big, json_row()]) + "]").encode()
    outcome = parse_bytes(tmp_path, content, ".json", limits=Limits(row_chars=100_000, field_chars=400_000))
    assert list(outcome.accepted) == [1, 3]
    assert outcome.rejected == {2: [(None, "row_too_large")]}


def test_nesting_far_too_deep_for_the_decoder_is_a_rejected_row_not_a_crash(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for suffix, content in ((".json", f"[{deep}, {json_row()}]"), (".ndjson", f"{deep}\n{json_row()}\n")):
        outcome = parse_bytes(tmp_path, content.encode(), suffix)
        assert outcome.rejected == {1: [(None, "too_deep")]}
        assert list(outcome.accepted) == [2]


def test_an_ndjson_line_past_the_line_limit_is_rejected(tmp_path: Path) -> None:
    long_id = json_row(', "id": "%s"' % ("i" * 500))
    content = f"{json_row()}\n{long_id}\n{json_row()}\n".encode()
    outcome = parse_bytes(tmp_path, content, ".ndjson", limits=Limits(line_chars=200))
    assert outcome.rejected == {2: [(None, "line_too_long")]}
    assert list(outcome.accepted) == [1, 3]


def test_undecodable_bytes_in_json_reject_their_row_with_the_byte_offset(tmp_path: Path) -> None:
    bad = json_row().encode().replace(b'"A"', b'"A\xff"')
    for suffix, content in ((".json", b"[" + bad + b"," + json_row().encode() + b"]"), (".ndjson", bad + b"\n")):
        outcome = parse_bytes(tmp_path, content, suffix)
        assert outcome.rejected == {1: [(None, "invalid_encoding")]}
        offset = content.index(b"\xff")
        assert outcome.messages[1] == [f"byte {offset} does not decode"]


# ------------------------------------------------------------------ gzip


def test_a_gzip_upload_is_read_as_it_inflates(tmp_path: Path) -> None:
    content = gzip.compress(HEADER + b"".join(row(i) for i in range(1000)))
    outcome = parse_bytes(tmp_path, content, ".gz", UploadOptions(compression="gzip"))
    assert len(outcome.accepted) == 1000 and outcome.failure is None


def test_a_gzip_bomb_fails_the_file_past_the_ratio_limit_keeping_the_rows_before(tmp_path: Path) -> None:
    content = gzip.compress(HEADER + row(1) * 200_000)  # ~9 MB of one repeated row: a ratio near 1000
    outcome = parse_bytes(tmp_path, content, ".gz", UploadOptions(compression="gzip"))
    assert outcome.failure == (
        "the file inflates more than 100 times its compressed size (a decompression bomb?)",
        None,
    )
    assert 0 < len(outcome.accepted) < 200_000


def test_a_gzip_upload_fails_past_the_decompressed_size_limit(tmp_path: Path) -> None:
    content = gzip.compress(HEADER + os.urandom(3_000_000).hex().encode())
    outcome = parse_bytes(
        tmp_path, content, ".gz", UploadOptions(compression="gzip"), Limits(decompressed_bytes=1_000_000)
    )
    assert outcome.failure == ("the file inflates past the limit of 1000000 bytes", None)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"plain text", "the gzip stream is corrupt or truncated after 0 bytes: Not a gzipped file (b'pl')"),
        (
            gzip.compress(HEADER + row(1))[:-12],
            "the gzip stream is corrupt or truncated after 0 bytes:"
            " Compressed file ended before the end-of-stream marker was reached",
        ),
    ],
)
def test_a_corrupt_or_truncated_gzip_upload_fails_the_file_with_the_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    assert parse_bytes(tmp_path, content, ".gz", UploadOptions(compression="gzip")).failure == (reason, None)


# ------------------------------------------------------------------ error thresholds


def mixed(valid: int, invalid: int) -> bytes:
    """``valid`` good rows, then ``invalid`` rows with a bad email."""
    bad = [f"bad{i},Ada,Lovelace,2024-01-05\n".encode() for i in range(invalid)]
    return HEADER + b"".join(row(i) for i in range(valid)) + b"".join(bad)


def test_past_max_errors_the_parse_stops_with_the_reason_and_the_rows_before_stand(tmp_path: Path) -> None:
    outcome = parse_bytes(tmp_path, mixed(150, 10) + mixed(50, 0)[len(HEADER) :], options=UploadOptions(max_errors=3))
    assert outcome.failure == ("4 rows rejected, more than max_errors=3 (stopped at line 155)", 155)
    assert (len(outcome.accepted), len(outcome.rejected), outcome.rows_total) == (150, 4, 154)


def test_exactly_max_errors_rejected_rows_are_allowed(tmp_path: Path) -> None:
    outcome = parse_bytes(tmp_path, mixed(10, 3), options=UploadOptions(max_errors=3))
    assert outcome.failure is None and len(outcome.rejected) == 3


def test_past_max_error_rate_the_parse_stops_once_enough_rows_were_read(tmp_path: Path) -> None:
    # Every other row is bad. 5 of the first 10 is no rate yet; the first rejection from row 100 on stops it.
    content = HEADER + b"".join(row(i) if i % 2 else f"bad{i},A,B,2024-01-05\n".encode() for i in range(300))
    outcome = parse_bytes(tmp_path, content, options=UploadOptions(max_error_rate=0.1))
    assert outcome.failure == ("51 of 101 rows rejected, more than max_error_rate=0.1 (stopped at line 102)", 102)
    assert outcome.rows_total == 101


def test_the_error_rate_of_a_short_file_is_judged_at_its_end(tmp_path: Path) -> None:
    assert parse_bytes(tmp_path, mixed(8, 2), options=UploadOptions(max_error_rate=0.1)).failure == (
        "2 of 10 rows rejected, more than max_error_rate=0.1",
        None,
    )
    assert parse_bytes(tmp_path, mixed(9, 1), options=UploadOptions(max_error_rate=0.1)).failure is None


# ------------------------------------------------------------------ storable raw rows


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ({"a": "x\x00y"}, {"a": "x\ufffdy"}),
        (["\udcff", "ok"], ["\ufffd", "ok"]),
        ({"n": 2**70, "f": float("inf")}, {"n": str(2**70), "f": "inf"}),
        ({"\x00key": 1}, {"\ufffdkey": 1}),
        ([[["\udcff"]]], [["(nested deeper than 2 levels)"]]),
        ({"plain": [1, "two", None, True]}, {"plain": [1, "two", None, True]}),
    ],
)
def test_raw_rows_are_stored_as_jsonb_can_hold_them(raw: object, stored: object) -> None:
    assert storable(raw, text_limit=100, depth_limit=2) == stored
