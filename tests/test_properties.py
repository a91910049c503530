"""Properties of the parser over generated input (hypothesis).

Round trip: any rows that ``csv.writer`` writes from arbitrary strings, with any of
the sniffed delimiters, parse back into exactly the values the rules make of those
strings, each on the physical line its record starts on. (csv.writer's own line
break, CRLF: with LF or CR alone it leaves the other one unquoted in a field, which
no reader can tell from a line break.)

Fuzzing: random bytes and randomly mutated valid files never make the parser raise;
they end in rows, rejected rows or a failure with a reason, and every event the
parser emits can be published and stored.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestro.datasets.rules import Invalid, normalize_string
from ingestro.formats.csv_rows import DELIMITERS
from tests.parse_outcome import contact, parse

HEADER = ["email", "first_name", "last_name", "signup_date", "id"]
# Arbitrary text: every code point but surrogates (text that is not Unicode cannot be written as UTF-8).
TEXT = st.text(max_size=30)
ROWS = st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=8)
# A temporary directory per example: hypothesis calls the test many times within one pytest item.
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def expected_errors(values: dict[str, str]) -> list[tuple[str | None, str]]:
    errors: list[tuple[str | None, str]] = []
    for field, value in values.items():
        try:
            if normalize_string(value) is None and field != "id":
                errors.append((field, "required"))
        except Invalid as invalid:
            errors.append((field, invalid.code))
    return errors


def write_csv(rows: list[tuple[str, str, str]], delimiter: str) -> tuple[str, list[int]]:
    """The CSV text and the physical line each row starts on."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(HEADER)
    starts = []
    for index, (first_name, last_name, id_) in enumerate(rows):
        starts.append(line_breaks(out.getvalue()) + 1)
        writer.writerow([f"u{index}@example.com", first_name, last_name, "2024-01-05", id_])
    return out.getvalue(), starts


@pytest.mark.slow
@SETTINGS
@given(rows=ROWS, delimiter=st.sampled_from(DELIMITERS))
def test_any_row_csv_writer_writes_parses_back_to_the_normalized_values(
    tmp_path: Path, rows: list[tuple[str, str, str]], delimiter: str
) -> None:
    text, starts = write_csv(rows, delimiter)
    path = tmp_path / "rows.csv"
    path.write_bytes(text.encode())
    outcome = parse(path)

    assert outcome.failure is None
    for index, ((first_name, last_name, id_), line) in enumerate(zip(rows, starts, strict=True)):
        values = {"first_name": first_name, "last_name": last_name, "id": id_}
        errors = expected_errors(values)
        if errors:
            assert outcome.rejected[line] == errors
            continue
        assert outcome.accepted[line] == contact(
            f"u{index}@example.com",
            normalize_string(first_name) or "",
            normalize_string(last_name) or "",
            "2024-01-05",
            id=normalize_string(id_),
        )
    assert len(outcome.accepted) + len(outcome.rejected) == len(rows)


VALID_FILES = {
    "csv": b"email,first_name,last_name,signup_date,metadata\r\n"
    b'a@example.com,Ada,Lovelace,2024-01-05,"{""k"": [1, 2]}"\r\n'
    b'"b@example.com","Gr""ace",Hopper,01/06/2024,\r\n',
    "json": b'[{"email": "a@example.com", "first_name": "Ada", "last_name": "L", "signup_date": "2024-01-05",'
    b' "metadata": {"k": [1, {"n": null}]}}, {"email": "b@example.com", "first_name": "B", "last_name": "H",'
    b' "signup_date": "5 Jan 2024", "age": 3}]',
    "ndjson": b'{"email": "a@example.com", "first_name": "Ada", "last_name": "L", "signup_date": "2024-01-05"}\n'
    b'{"email": "b@example.com", "first_name": "B", "last_name": "H", "signup_date": "2024-01-05", "age": 3}\n',
}


@st.composite
def mutated(draw: st.DrawFn, content: bytes) -> bytes:
    """``content`` with a few bytes replaced, inserted or deleted, or cut short; often past its first line."""
    data = bytearray(content)
    start = draw(st.sampled_from([0, content.find(b"\n") + 1]))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(min(start, len(data)), len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
        byte = draw(st.sampled_from([0x00, 0x0A, 0x0D, 0x22, 0x2C, 0x5B, 0x5D, 0x7B, 0x7D, 0x5C, 0xFF, 0xC3, 0xED]))
        if action == "replace" and position < len(data):
            data[position] = byte
        elif action == "insert":
            data.insert(position, byte)
        elif action == "delete" and position < len(data):
            del data[position]
        elif action == "cut":
            del data[position:]
    return bytes(data)


FUZZED = st.one_of(
    st.tuples(st.sampled_from(list(VALID_FILES)), st.binary(max_size=300)),
    st.sampled_from(list(VALID_FILES)).flatmap(lambda name: st.tuples(st.just(name), mutated(VALID_FILES[name]))),
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=FUZZED)
def test_random_and_mutated_files_end_in_rows_rejections_or_a_reason_never_an_exception(
    tmp_path: Path, case: tuple[str, bytes]
) -> None:
    file_format, content = case
    path = tmp_path / f"fuzz.{file_format}"
    path.write_bytes(content)
    outcome = parse(path, file_format)  # raises on any exception, and on any event the codec cannot carry
    assert outcome.rows_total == len(outcome.accepted) + len(outcome.rejected)
    assert outcome.failure is None or outcome.failure[0]
