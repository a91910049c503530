"""Seeded sample files of contacts with known counts, for tests and benchmarks.

A sample has ``rows`` rows: about ``invalid_rate`` of them invalid (each with one
known defect) and about ``duplicate_rate`` of them repeats of an earlier valid row
(written with different case and spacing, so they normalize to the same content).
Every other valid row is distinct. The file is written as it is generated, so a
sample of any size takes little memory.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import orjson

HEADER = ("email", "first_name", "last_name", "age", "signup_date", "metadata", "id")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Perlman", "Thompson")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Each defect makes a row invalid in exactly one field.
DEFECTS = (
    ("email", "not-an-email"),
    ("first_name", "   "),
    ("signup_date", "2024-02-30"),
    ("age", "-3"),
    ("age", "forty"),
    ("metadata", "[1, 2]"),
)


@attrs.frozen
class Expected:
    """What ingesting the sample must give."""

    rows: int
    valid: int
    invalid: int
    #: Valid rows that repeat an earlier valid row's content.
    duplicates: int
    #: Lines (CSV/NDJSON physical lines; JSON array positions) of the invalid rows.
    invalid_lines: tuple[int, ...]

    @property
    def distinct(self) -> int:
        return self.valid - self.duplicates


def _valid_row(index: int, rng: random.Random) -> dict[str, Any]:
    year, month, day = 2015 + index % 10, 1 + index % 12, 1 + index % 28
    date_text = rng.choice(
        (
            f"{year}-{month:02d}-{day:02d}",
            f"{year}/{month:02d}/{day:02d}",
            f"{month:02d}/{day:02d}/{year}",
            f"{day} {MONTHS[month - 1]} {year}",
        )
    )
    return {
        "email": f"user{index}@example.com",
        "first_name": FIRST_NAMES[index % len(FIRST_NAMES)],
        "last_name": LAST_NAMES[(index // 10) % len(LAST_NAMES)],
        "age": str(18 + index % 60) if index % 7 else "",
        "signup_date": date_text,
        "metadata": f'{{"source": "sample", "tier": {index % 3}}}' if index % 5 == 0 else "",
        "id": f"c-{index}",
    }


def _disguised(row: dict[str, Any]) -> dict[str, Any]:
    """The same content as it might arrive again: other case and surrounding spaces."""
    return {**row, "email": f"  {row['email'].upper()} ", "first_name": f" {row['first_name']}"}


def sample_rows(
    rows: int, seed: int = 42, invalid_rate: float = 0.02, duplicate_rate: float = 0.05
) -> Iterator[tuple[dict[str, Any], str]]:
    """Yield (row, kind) with kind one of ``valid``, ``duplicate``, ``invalid``; deterministic for a seed."""
    rng = random.Random(seed)
    recent: list[dict[str, Any]] = []
    for index in range(rows):
        draw = rng.random()
        if draw < invalid_rate:
            row = _valid_row(index, rng)
            field, value = DEFECTS[index % len(DEFECTS)]
            row[field] = value
            yield row, "invalid"
        elif draw < invalid_rate + duplicate_rate and recent:
            yield _disguised(rng.choice(recent)), "duplicate"
        else:
            row = _valid_row(index, rng)
            recent.append(row)
            if len(recent) > 1000:
                recent.pop(rng.randrange(len(recent)))
            yield row, "valid"


def _json_value(row: dict[str, Any]) -> dict[str, Any]:
    """A row as a JSON producer would write it: numbers as numbers, empty fields left out."""
    value: dict[str, Any] = {}
    for key, text in row.items():
        if text == "":
            continue
        if key == "age" and text.lstrip("-").isdigit():
            value[key] = int(text)
        else:
            value[key] = text
    return value


def write_sample(out: IO[bytes], file_format: str, rows: int, seed: int = 42, **rates: float) -> Expected:
    """Write a sample in ``file_format`` (csv, json, ndjson) to ``out``; return what it must ingest to."""
    counts = {"valid": 0, "duplicate": 0, "invalid": 0}
    invalid_lines: list[int] = []
    writer = None
    if file_format == "csv":
        text = _TextOut(out)
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(HEADER)
    elif file_format == "json":
        out.write(b"[\n")
    elif file_format != "ndjson":
        raise ValueError(f"unknown format {file_format!r}")
    for position, (row, kind) in enumerate(sample_rows(rows, seed, **rates), start=1):
        counts[kind] += 1
        if kind == "invalid":
            # CSV: the header is line 1; NDJSON: line = position; JSON array: element position.
            invalid_lines.append(position + 1 if file_format == "csv" else position)
        if writer is not None:
            writer.writerow([row[key] for key in HEADER])
        elif file_format == "json":
            out.write((b",\n" if position > 1 else b"") + orjson.dumps(_json_value(row)))
        else:
            out.write(orjson.dumps(_json_value(row)) + b"\n")
    if file_format == "json":
        out.write(b"\n]\n")
    valid = counts["valid"] + counts["duplicate"]
    return Expected(rows, valid, counts["invalid"], counts["duplicate"], tuple(invalid_lines))


def write_sample_file(path: Path, file_format: str, rows: int, seed: int = 42, **rates: float) -> Expected:
    with open(path, "wb") as out:
        return write_sample(out, file_format, rows, seed, **rates)


@attrs.define
class _TextOut:
    """Lets csv.writer write UTF-8 into a binary stream."""

    out: IO[bytes]

    def write(self, text: str) -> int:
        return self.out.write(text.encode())
