"""Specification of how a file's columns (CSV header, JSON keys) meet a dataset's fields.

Field names and aliases match trimmed and case-insensitively; a dataset's
``unknown_columns`` says what happens to the others: ignore (noted in the job), keep
(stored under ``extra_columns``, part of the hash), or reject.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingestro.datasets import EXTRA_COLUMNS, Dataset, declaration_of, get_dataset
from ingestro.datasets.rules import check_row, content_hash, match_columns
from ingestro.formats.readers import RowReader
from tests.parse_outcome import Outcome, parse
from tests.test_rules import valid_record


def people(unknown_columns: str = "ignore") -> Dataset:
    return declaration_of(
        {
            "name": "people",
            "unknown_columns": unknown_columns,
            "fields": [
                {"name": "email", "type": "email", "required": True, "aliases": ["E-mail", "Email Address"]},
                {"name": "name", "type": "string", "aliases": ["Full Name"]},
                {"name": "age", "type": "integer"},
            ],
        }
    )


def parsed(tmp_path: Path, name: str, content: str, dataset: Dataset) -> Outcome:
    path = tmp_path / name
    path.write_text(content)
    return parse(path, dataset=dataset)


def read(tmp_path: Path, name: str, content: str, dataset: Dataset) -> tuple[list[dict[str, Any] | None], RowReader]:
    path = tmp_path / name
    path.write_text(content)
    reader = RowReader(path, name.rsplit(".", 1)[1], dataset)
    return [row.record for row in reader], reader


# --------------------------------------------------------------------------- aliases


def test_header_aliases_match_trimmed_and_case_insensitively() -> None:
    match = match_columns(people(), [" e-mail ", "FULL NAME", "Age"])
    assert match.positions == {0: "email", 1: "name", 2: "age"}
    assert match.unknown == [] and match.duplicates == [] and match.missing_required == []


def test_a_required_field_present_by_an_alias_is_not_missing() -> None:
    assert match_columns(people(), ["Email Address"]).missing_required == []


@pytest.mark.parametrize(
    ("header", "duplicates"),
    [
        (["email", "E-mail"], ["E-mail"]),
        (["Email Address", "name", "EMAIL"], ["EMAIL"]),
        (["email", "Full Name", "name"], ["name"]),
    ],
)
def test_a_header_naming_one_field_twice_by_name_or_alias_lists_a_duplicate(
    header: list[str], duplicates: list[str]
) -> None:
    assert match_columns(people(), header).duplicates == duplicates


def test_csv_columns_named_by_aliases_give_the_fields(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, "p.csv", "E-mail,Full Name,age\nAda@Example.com,Ada Lovelace,36\n", people())
    assert outcome.failure is None
    assert outcome.accepted == {2: {"email": "ada@example.com", "name": "Ada Lovelace", "age": 36}}


def test_a_csv_header_with_a_field_and_its_alias_fails_the_file_like_repeated_columns(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, "p.csv", "email,E-mail\na@example.com,b@example.com\n", people())
    assert outcome.failure == ("header repeats columns: E-mail", 1)


def test_json_keys_named_by_aliases_give_the_fields(tmp_path: Path) -> None:
    outcome = parsed(
        tmp_path, "p.json", '[{"Email Address": "ada@example.com", " full name ": "Ada", "AGE": 36}]', people()
    )
    assert outcome.accepted == {1: {"email": "ada@example.com", "name": "Ada", "age": 36}}


def test_a_json_row_naming_a_field_twice_is_rejected_as_duplicate_column(tmp_path: Path) -> None:
    content = '{"email": "a@example.com", "E-mail": "b@example.com"}\n{"email": "c@example.com"}\n'
    outcome = parsed(tmp_path, "p.ndjson", content, people())
    assert outcome.rejected == {1: [("email", "duplicate_column")]}
    assert "'email', 'E-mail'" in outcome.messages[1][0]
    assert list(outcome.accepted) == [2]


# --------------------------------------------------------------------------- unknown columns: ignore


def test_ignore_drops_unknown_columns_and_notes_them(tmp_path: Path) -> None:
    csv_outcome = parsed(tmp_path, "p.csv", "email,Nick Name,x\na@example.com,Ace,1\n", people("ignore"))
    assert csv_outcome.accepted == {2: {"email": "a@example.com", "name": None, "age": None}}
    assert csv_outcome.unknown_columns == ["Nick Name", "x"]
    json_outcome = parsed(tmp_path, "p.ndjson", '{"email": "a@example.com", "Nick": "Ace"}\n', people("ignore"))
    assert json_outcome.accepted == {1: {"email": "a@example.com", "name": None, "age": None}}
    assert json_outcome.unknown_columns == ["Nick"]


# --------------------------------------------------------------------------- unknown columns: keep


def test_keep_gives_the_unknown_csv_columns_with_the_record_as_written(tmp_path: Path) -> None:
    records, reader = read(tmp_path, "p.csv", "email, Nick Name ,x\na@example.com,Ace,\n", people("keep"))
    assert records == [{"email": "a@example.com", EXTRA_COLUMNS: {" Nick Name ": "Ace", "x": ""}}]
    assert reader.unknown_columns == [" Nick Name ", "x"]


def test_keep_gives_the_unknown_json_keys_with_their_values(tmp_path: Path) -> None:
    content = '[{"email": "a@example.com", "Nick": {"n": [1]}}, {"email": "b@example.com"}]'
    records, _ = read(tmp_path, "p.json", content, people("keep"))
    assert records == [{"email": "a@example.com", EXTRA_COLUMNS: {"Nick": {"n": [1]}}}, {"email": "b@example.com"}]


def test_kept_columns_are_in_the_values_and_in_the_hash(tmp_path: Path) -> None:
    content = '{"email": "a@example.com", "Nick": "Ace"}\n{"email": "b@example.com"}\n'
    outcome = parsed(tmp_path, "p.ndjson", content, people("keep"))
    assert outcome.accepted == {
        1: {"email": "a@example.com", "name": None, "age": None, EXTRA_COLUMNS: {"Nick": "Ace"}},
        2: {"email": "b@example.com", "name": None, "age": None},  # none: no extra_columns key at all
    }
    keep, ignore = people("keep"), people("ignore")
    record = {"email": "a@example.com", EXTRA_COLUMNS: {"Nick": "Ace"}}
    kept = check_row(keep, record)
    assert kept.content_hash == content_hash({"email": "a@example.com", "extra_columns": {"Nick": "Ace"}})
    assert kept.content_hash != check_row(keep, {**record, EXTRA_COLUMNS: {"Nick": "Bob"}}).content_hash
    # Without unknown columns, or when the dataset does not keep them, the hash is the fields' alone.
    assert check_row(keep, {"email": "a@example.com"}).content_hash == check_row(ignore, record).content_hash
    assert check_row(keep, {"email": "a@example.com", EXTRA_COLUMNS: {}}).values == check_row(ignore, record).values


@pytest.mark.parametrize(
    ("extra", "code"),
    [({"x": "a\x00"}, "invalid_character"), ({"x\x00": "a"}, "invalid_character"), ({"x": 2**70}, "invalid_json")],
)
def test_kept_columns_that_jsonb_cannot_store_reject_the_row(extra: dict[str, Any], code: str) -> None:
    checked = check_row(people("keep"), {"email": "a@example.com", EXTRA_COLUMNS: extra})
    assert checked.content_hash is None
    assert [(error.field, error.code) for error in checked.errors] == [(None, code)]


# --------------------------------------------------------------------------- unknown columns: reject


def test_reject_fails_a_csv_file_whose_header_has_unknown_columns_naming_them(tmp_path: Path) -> None:
    header = "email,Nick,b,c,d,e,f,g"
    outcome = parsed(tmp_path, "p.csv", f"{header}\na@example.com,1,2,3,4,5,6,7\n", people("reject"))
    assert outcome.failure is not None
    reason, line = outcome.failure
    assert line == 1
    assert "rejects unknown columns" in reason
    assert "'Nick', 'b', 'c', 'd', 'e' and 2 more" in reason
    assert outcome.accepted == {}


def test_reject_accepts_a_csv_file_of_declared_columns(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, "p.csv", "E-mail,name\na@example.com,Ada\n", people("reject"))
    assert outcome.failure is None and list(outcome.accepted) == [2]


@pytest.mark.parametrize("name", ["p.ndjson", "p.json"])
def test_reject_rejects_a_json_row_with_unknown_keys_as_unknown_column(tmp_path: Path, name: str) -> None:
    rows = ['{"email": "a@example.com", "Nick": "Ace", "x": 1}', '{"email": "b@example.com"}']
    content = "\n".join(rows) + "\n" if name.endswith("ndjson") else "[" + ",".join(rows) + "]"
    outcome = parsed(tmp_path, name, content, people("reject"))
    assert outcome.failure is None
    assert outcome.rejected == {1: [(None, "unknown_column")]}
    assert "'Nick', 'x'" in outcome.messages[1][0]
    assert outcome.raw[1] == {"email": "a@example.com", "Nick": "Ace", "x": 1}
    assert list(outcome.accepted) == [2]


# --------------------------------------------------------------------------- hash stability


def test_the_hash_of_a_contacts_row_is_pinned() -> None:
    # A full row hashes as it did before declared datasets; a row with empty fields leaves them out.
    contacts = get_dataset("contacts")
    full = valid_record()
    assert check_row(contacts, full).content_hash == "a39d69902145566bcb76b423068ca0a58450d947623874a90c45e78db09912c9"
    least = {"email": "a@example.com", "first_name": "A", "last_name": "B", "signup_date": "2024-01-05"}
    assert check_row(contacts, least).content_hash == "24246e64a96a4315d1f993e9ea2aa46b8e1956d3c288c5dc21183e3bc434fe08"


def test_a_number_hashes_by_its_value_not_its_spelling() -> None:
    dataset = declaration_of({"name": "prices", "fields": [{"name": "price", "type": "number"}]})
    hashes = {check_row(dataset, {"price": spelling}).content_hash for spelling in ("12.5", "12.50", "1.25e1", 12.5)}
    assert len(hashes) == 1


def test_kept_csv_columns_are_stored_as_the_text_read(tmp_path: Path) -> None:
    outcome = parsed(tmp_path, "p.csv", "email,Nick,Score\na@example.com, Ace ,007\n", people("keep"))
    assert outcome.accepted == {
        2: {"email": "a@example.com", "name": None, "age": None, EXTRA_COLUMNS: {"Nick": " Ace ", "Score": "007"}}
    }
    assert outcome.unknown_columns == ["Nick", "Score"]


def test_a_row_hashes_alike_before_and_after_its_dataset_gains_an_optional_field() -> None:
    before = declaration_of({"name": "pets", "fields": [{"name": "name", "type": "string", "required": True}]})
    after = declaration_of(
        {
            "name": "pets",
            "version": 2,
            "fields": [
                {"name": "name", "type": "string", "required": True},
                {"name": "legs", "type": "integer"},
                {"name": "colour", "type": "string", "default": "none"},
            ],
        }
    )
    row = {"name": "Rex"}
    assert check_row(before, row).content_hash == check_row(after, row).content_hash
    assert check_row(after, row | {"colour": "none"}).content_hash == check_row(before, row).content_hash
    assert check_row(after, row | {"colour": "red"}).content_hash != check_row(before, row).content_hash
