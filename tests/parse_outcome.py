"""What parsing a file comes to, gathered from parse_file's events, for the specifications to compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ingestro.datasets import Dataset, get_dataset
from ingestro.domain import codec
from ingestro.domain.events import ParseCompleted, ParseFailed, RowsAccepted, RowsRejected, UploadOptions
from ingestro.domain.limits import DEFAULT_LIMITS, Limits
from ingestro.formats.parsing import parse_file

CONTACTS = get_dataset("contacts")


@attrs.frozen
class Outcome:
    #: line -> normalized values
    accepted: dict[int, dict[str, Any]]
    #: line -> (field, code) of each error
    rejected: dict[int, list[tuple[str | None, str]]]
    #: line -> the raw row stored with the rejection
    raw: dict[int, Any]
    #: line -> message of each error
    messages: dict[int, list[str]]
    #: (reason, line) of a failed parse
    failure: tuple[str, int | None] | None
    unknown_columns: list[str]
    rows_total: int


def parse(
    path: Path,
    file_format: str | None = None,
    options: UploadOptions = UploadOptions(),
    limits: Limits = DEFAULT_LIMITS,
    batch_size: int = 100,
    dataset: Dataset = CONTACTS,
) -> Outcome:
    """Parse ``path`` (format from its extension unless given); every event must also go through the codec."""
    if file_format is None:
        file_format = {
            ".csv": "csv",
            ".tsv": "csv",
            ".gz": "csv",
            ".json": "json",
            ".ndjson": "ndjson",
            ".xlsx": "xlsx",
            ".parquet": "parquet",
        }[path.suffix]
    accepted: dict[int, dict[str, Any]] = {}
    rejected: dict[int, list[tuple[str | None, str]]] = {}
    raw: dict[int, Any] = {}
    messages: dict[int, list[str]] = {}
    failure = None
    unknown: list[str] = []
    total = -1
    for event in parse_file("job", path, file_format, dataset, batch_size, options, limits):
        # What the parser emits must go through the stream entry codec unchanged.
        assert codec.decode({key.encode(): value for key, value in codec.encode(event).items()}) == event
        if isinstance(event, RowsAccepted):
            accepted.update((row.line, row.values) for row in event.rows)
        elif isinstance(event, RowsRejected):
            for row in event.rows:
                rejected[row.line] = [(error.field, error.code) for error in row.errors]
                messages[row.line] = [error.message for error in row.errors]
                raw[row.line] = row.raw
        elif isinstance(event, ParseFailed):
            failure, total = (event.reason, event.line), event.rows_total
        elif isinstance(event, ParseCompleted):
            unknown, total = event.unknown_columns, event.rows_total
    return Outcome(accepted, rejected, raw, messages, failure, unknown, total)


def contact(
    email: str,
    first_name: str,
    last_name: str,
    signup_date: str,
    age: int | None = None,
    metadata: dict[str, Any] | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """A contacts row as the rules normalize it: every field present."""
    return {
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "age": age,
        "signup_date": signup_date,
        "metadata": metadata,
        "id": id,
    }
