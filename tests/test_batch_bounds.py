"""A batch ends at ``INGESTRO_BATCH_SIZE`` rows, or earlier once ``BATCH_CHARS`` of the file's lines were read
since it began: a file of large rows makes more, smaller batches, holding every row exactly once, the same on
every parse."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ingestro.domain.events import ParseCompleted, RowsAccepted, RowsRejected, UploadOptions
from ingestro.formats.parsing import parse_file
from tests.parse_outcome import CONTACTS

HEADER = "email,first_name,last_name,age,signup_date\n"


def _file(tmp_path: Path, rows: int, note_chars: int, name: str = "large.csv") -> Path:
    """``rows`` rows whose first name is ``note_chars`` long; every fifth has a bad age (rejected)."""
    lines = [HEADER]
    for n in range(rows):
        age = "old" if n % 5 == 4 else str(20 + n % 50)
        lines.append(f"u{n}@example.com,{'x' * note_chars},L,{age},2024-01-02\n")
    path = tmp_path / name
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _parse(path: Path, batch_size: int, batch_chars: int, options: UploadOptions = UploadOptions()) -> list[object]:
    return list(parse_file("job", path, "csv", CONTACTS, batch_size, options, batch_chars=batch_chars))


@pytest.mark.parametrize("format_", ["csv", "ndjson", "json"])
def test_a_batch_of_large_rows_ends_at_the_text_bound_and_every_row_is_in_exactly_one(
    tmp_path: Path, format_: str
) -> None:
    path = _file(tmp_path, 100, 1_000)
    if format_ != "csv":
        fields = HEADER.strip().split(",")
        objects = [
            "{" + ", ".join(f'"{key}": "{value}"' for key, value in zip(fields, line.split(","), strict=True)) + "}"
            for line in path.read_text().splitlines()[1:]
        ]
        path.write_text("\n".join(objects) + "\n" if format_ == "ndjson" else "[\n" + ",\n".join(objects) + "\n]")
    events = list(parse_file("job", path, format_, CONTACTS, 2000, batch_chars=10_000))

    accepted = [event for event in events if isinstance(event, RowsAccepted)]
    rejected = [event for event in events if isinstance(event, RowsRejected)]
    # ~1,040 characters a row: a batch ends after the row that passes 10,000 characters since it began (a JSON
    # array is read in chunks of 64 KiB, so its batches end at the chunk that passes them).
    assert all(len(batch.rows) <= (70 if format_ == "json" else 10) for batch in accepted + rejected)
    assert len(accepted) > 1
    assert [batch.seq for batch in accepted] == list(range(len(accepted)))
    assert [batch.seq for batch in rejected] == list(range(len(rejected)))
    lines = sorted(row.line for batch in accepted + rejected for row in batch.rows)
    first = 2 if format_ == "csv" else 1
    assert lines == list(range(first, first + 100))
    verdict = events[-1]
    assert isinstance(verdict, ParseCompleted)
    assert (verdict.rows_accepted, verdict.rows_rejected) == (80, 20)
    assert (verdict.accepted_batches, verdict.rejected_batches) == (len(accepted), len(rejected))
    # Deterministic: parsing again gives the same batches, as a redelivery or a reparse needs.
    assert list(parse_file("job", path, format_, CONTACTS, 2000, batch_chars=10_000)) == events


def test_small_rows_fill_their_batches_by_count(tmp_path: Path) -> None:
    path = _file(tmp_path, 5_000, 5)
    accepted = [event for event in _parse(path, 2000, 16 * 1024 * 1024) if isinstance(event, RowsAccepted)]
    assert [len(batch.rows) for batch in accepted] == [2000, 2000]


def test_the_text_bound_counts_the_decompressed_lines_of_a_gzip_file(tmp_path: Path) -> None:
    plain = _file(tmp_path, 100, 1_000)
    packed = tmp_path / "large.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    gzipped = _parse(packed, 2000, 10_000, UploadOptions(compression="gzip"))
    assert gzipped == _parse(plain, 2000, 10_000)
