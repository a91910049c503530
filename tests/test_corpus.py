"""The conformance corpus (``tests/corpus/``): real-world CSV, JSON, XLSX and Parquet files and what each must give.

Each case states the exact rows accepted (by line, fully normalized), the exact rows
rejected (by line, with field and code), or the exact reason the file failed.
A CSV row's line is the physical line its record starts on; a JSON array row's
line is its position in the array; an NDJSON row's line is its physical line; an XLSX row's line is its
sheet row; a Parquet row's line is its row number. The XLSX and Parquet files are written by
tests/corpus/make_binary.py, and must be exactly what it writes.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingestro.datasets import Dataset, parse_declaration
from ingestro.domain.events import UploadOptions
from ingestro.domain.limits import DEFAULT_LIMITS, Limits
from tests.corpus import make_binary
from tests.parse_outcome import CONTACTS, Outcome, contact, parse

CORPUS = Path(__file__).parent / "corpus"
ADA = contact("ada@example.com", "Ada", "Lovelace", "2024-01-05", age=36, id="c-1")
GRACE = contact("grace@example.com", "Grace", "Hopper", "2024-01-06", id="c-2")
ALAN = contact("alan@example.com", "Alan", "Turing", "2024-01-07", age=41, id="c-3")


def corpus(
    name: str, options: UploadOptions = UploadOptions(), limits: Limits = DEFAULT_LIMITS, dataset: Dataset = CONTACTS
) -> Outcome:
    return parse(CORPUS / name, options=options, limits=limits, dataset=dataset)


def assert_clean(outcome: Outcome) -> None:
    assert outcome.rejected == {}
    assert outcome.failure is None


# ------------------------------------------------------------------ CSV structure


def test_quoted_fields_hold_delimiters_quotes_and_newlines_and_lines_count_physically() -> None:
    outcome = corpus("csv/quoted.csv")
    assert_clean(outcome)
    assert outcome.accepted == {
        2: {**ADA, "first_name": "Ada, Countess", "last_name": 'Lovelace "Byron"'},
        # The record spans lines 3-6: one newline in first_name, two in id.
        3: {**GRACE, "first_name": "Grace\nBrewster", "id": "multi\nline\nid"},
        7: ALAN,
    }


@pytest.mark.parametrize(
    ("name", "line_break"),
    [("csv/crlf.csv", "\r\n"), ("csv/cr.csv", "\r")],
)
def test_crlf_and_cr_end_lines_and_are_kept_inside_quotes(name: str, line_break: str) -> None:
    outcome = corpus(name)
    assert_clean(outcome)
    assert outcome.accepted == {2: {**ADA, "id": f"a{line_break}b"}, 4: GRACE}


def test_lf_crlf_and_cr_mixed_in_one_file_each_end_one_line() -> None:
    outcome = corpus("csv/mixed_line_endings.csv")
    assert outcome.accepted == {2: ADA, 3: GRACE, 4: ALAN}


def test_blank_and_whitespace_only_lines_are_skipped_but_counted() -> None:
    outcome = corpus("csv/blank_lines.csv")
    assert_clean(outcome)
    assert outcome.accepted == {4: ADA, 7: GRACE}
    assert outcome.rows_total == 2


def test_empty_fields_are_null_and_empty_required_fields_are_rejected() -> None:
    outcome = corpus("csv/empty_fields.csv")
    assert outcome.accepted == {2: contact("ada@example.com", "Ada", "Lovelace", "2024-01-05")}
    assert outcome.rejected == {
        3: [("email", "required")],
        4: [("email", "required"), ("first_name", "required"), ("last_name", "required")],
    }


def test_json_in_a_csv_field_is_parsed_as_the_metadata_object() -> None:
    outcome = corpus("csv/json_in_csv.csv")
    assert outcome.accepted == {
        2: contact("ada@example.com", "Ada", "Lovelace", "2024-01-05", metadata={"tags": ["a", "b"], "n": {"x": None}}),
    }
    assert outcome.rejected == {3: [("metadata", "invalid_json")], 4: [("metadata", "invalid_json")]}


def test_rows_with_too_few_or_too_many_fields_are_rejected_with_the_counts() -> None:
    outcome = corpus("csv/field_counts.csv")
    assert outcome.accepted == {4: ALAN}
    assert outcome.rejected == {2: [(None, "field_count")], 3: [(None, "field_count")]}
    assert outcome.messages == {2: ["expected 7 fields, found 6"], 3: ["expected 7 fields, found 8"]}
    assert outcome.raw[3] == ["grace@example.com", "Grace", "Hopper", "", "2024-01-06", "", "c-2", "extra"]


@pytest.mark.parametrize("name", ["csv/semicolon.csv", "csv/pipe.csv", "csv/utf16_bom.tsv"])
def test_the_delimiter_is_sniffed_from_the_header(name: str) -> None:
    outcome = corpus(name)
    assert_clean(outcome)
    assert len(outcome.accepted) == 1


def test_a_declared_delimiter_wins_over_the_sniffed_one() -> None:
    # The header has more commas than semicolons; declared, the semicolon splits the fields.
    outcome = corpus("csv/semicolon.csv", UploadOptions(delimiter=","))
    assert outcome.failure is not None and outcome.failure[0].startswith("header lacks required columns")
    assert corpus("csv/semicolon.csv", UploadOptions(delimiter=";")).accepted == {
        2: {**ADA, "first_name": "Ada; Countess"}
    }


def test_values_that_look_like_formulas_sql_or_html_are_data() -> None:
    outcome = corpus("csv/hostile_values.csv")
    assert outcome.accepted == {
        2: contact(
            "ada@example.com",
            '=HYPERLINK("http://x")',
            "'; DROP TABLE contacts;--",
            "2024-01-05",
            id="<script>alert(1)</script>",
        )
    }
    # PostgreSQL text cannot hold NUL: the row is refused, and its raw row is stored with U+FFFD instead.
    assert outcome.rejected == {3: [("first_name", "invalid_character")]}
    assert outcome.raw[3]["first_name"] == "N\ufffdL"


def test_unknown_columns_are_ignored_and_listed() -> None:
    outcome = corpus("csv/unknown_columns.csv")
    assert outcome.accepted == {2: contact("ada@example.com", "Ada", "Lovelace", "2024-01-05")}
    assert outcome.unknown_columns == ["favourite colour"]


def test_a_header_only_file_completes_with_no_rows() -> None:
    outcome = corpus("csv/header_only.csv")
    assert (outcome.accepted, outcome.rejected, outcome.failure, outcome.rows_total) == ({}, {}, None, 0)


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        ("csv/empty.csv", ("the file has no header row", None)),
        ("csv/missing_required.csv", ("header lacks required columns: last_name, signup_date", 1)),
        ("csv/duplicate_columns.csv", ("header repeats columns: Email", 1)),
    ],
)
def test_a_file_without_a_usable_header_fails_with_the_reason(name: str, failure: tuple[str, int | None]) -> None:
    assert corpus(name).failure == failure


# ------------------------------------------------------------------ encodings


def test_utf8_text_is_kept_exactly() -> None:
    outcome = corpus("csv/utf8.csv")
    assert outcome.accepted == {
        2: contact("jose@example.com", "José", "Muñoz", "2024-01-05", age=30),
        3: contact("li@example.com", "李", "小龙", "2024-01-06", age=32),
        4: contact("emoji@example.com", "Zoë 🚀", "Ødegård", "2024-01-07"),
    }


def test_a_utf8_bom_is_skipped() -> None:
    assert corpus("csv/utf8_bom.csv").accepted == {2: ADA}


def test_utf16_with_a_bom_is_read_as_utf16() -> None:
    assert corpus("csv/utf16_bom.tsv").accepted == {
        2: contact("jose@example.com", "José", "Muñoz", "2024-01-05", age=30, id="c-1")
    }


@pytest.mark.parametrize(
    ("name", "encoding", "first_name", "last_name"),
    [("csv/latin1.csv", "latin-1", "José", "Muñoz"), ("csv/cp1252.csv", "cp1252", "“Euro”", "Sign €")],
)
def test_a_declared_encoding_is_used(name: str, encoding: str, first_name: str, last_name: str) -> None:
    outcome = corpus(name, UploadOptions(encoding=encoding))
    assert_clean(outcome)
    assert outcome.accepted[2]["first_name"] == first_name
    assert outcome.accepted[2]["last_name"] == last_name


def test_undecodable_bytes_reject_their_row_with_the_byte_offset_and_the_file_goes_on() -> None:
    offset = (CORPUS / "csv/undecodable.csv").read_bytes().index(b"\xff")
    outcome = corpus("csv/undecodable.csv")
    assert outcome.accepted == {2: ADA, 4: ALAN}
    assert outcome.rejected == {3: [(None, "invalid_encoding")]}
    assert outcome.messages[3] == [f"byte {offset} does not decode"]
    assert outcome.raw[3]["first_name"] == "B\ufffdb"


def test_latin1_read_as_utf8_rejects_only_the_rows_with_non_ascii_bytes() -> None:
    content = (CORPUS / "csv/latin1.csv").read_bytes()
    outcome = corpus("csv/latin1.csv")
    assert list(outcome.accepted) == [3]
    assert outcome.messages == {2: [f"byte {content.index('é'.encode('latin-1'))} does not decode"]}


# ------------------------------------------------------------------ JSON


def test_a_json_array_of_objects_gives_one_row_per_element() -> None:
    outcome = corpus("json/valid.json")
    assert_clean(outcome)
    assert outcome.accepted == {
        1: {**ADA, "id": None, "metadata": {"tags": ["a"]}},
        2: {**GRACE, "id": None},
    }


def test_ndjson_rows_are_numbered_by_physical_line_and_blank_lines_skipped() -> None:
    outcome = corpus("json/valid.ndjson")
    assert_clean(outcome)
    assert outcome.accepted == {1: {**ADA, "id": None}, 3: {**GRACE, "id": None}}


def test_a_utf8_bom_before_json_is_skipped() -> None:
    assert list(corpus("json/bom.json").accepted) == [1]


def test_elements_that_are_not_objects_are_rejected_rows() -> None:
    outcome = corpus("json/not_objects.json")
    assert list(outcome.accepted) == [5]
    assert outcome.rejected == {line: [(None, "not_an_object")] for line in (1, 2, 3, 4)}
    assert [outcome.raw[line] for line in (1, 2, 3, 4)] == [1, "text", None, []]


def test_invalid_json_fails_the_file_at_the_byte_and_line_where_it_broke_keeping_the_rows_before() -> None:
    content = (CORPUS / "json/invalid.json").read_bytes()
    outcome = corpus("json/invalid.json")
    assert list(outcome.accepted) == [1, 2]
    assert outcome.failure == (
        f"invalid JSON in element 3 at byte {content.index(b'Alan')} (line 4): Expecting value",
        3,
    )


@pytest.mark.parametrize("name", ["json/truncated.json", "json/unclosed.json"])
def test_truncated_json_fails_where_the_file_ends_keeping_the_rows_before(name: str) -> None:
    size = (CORPUS / name).stat().st_size
    outcome = corpus(name)
    assert list(outcome.accepted) == [1]
    assert outcome.failure == (f"invalid JSON: the file ends inside element 2, at byte {size} (line 1)", 2)


def test_an_array_without_its_closing_bracket_fails_after_its_last_element() -> None:
    size = (CORPUS / "json/no_closing_bracket.json").stat().st_size
    outcome = corpus("json/no_closing_bracket.json")
    assert list(outcome.accepted) == [1]
    assert outcome.failure == (
        f"invalid JSON: the file ends before the array's closing bracket, after element 1, at byte {size} (line 2)",
        2,
    )


def test_data_after_the_array_fails_the_file_after_its_rows() -> None:
    outcome = corpus("json/trailing_garbage.json")
    assert list(outcome.accepted) == [1]
    assert outcome.failure == ("invalid JSON: unexpected data after the array at byte 106 (line 1)", None)


def test_a_row_nested_past_the_depth_limit_is_rejected_and_the_rows_after_it_read() -> None:
    outcome = corpus("json/deep.json")
    assert outcome.accepted[1]["metadata"] == {"a": {"b": {"c": 1}}}
    assert list(outcome.accepted) == [1, 3]
    assert outcome.rejected == {2: [(None, "too_deep")]}
    assert outcome.messages[2] == ["nested deeper than 32 levels"]


def test_huge_numbers_are_exact_integers_or_rejected_never_rounded() -> None:
    outcome = corpus("json/huge_numbers.json")
    # 2**53 + 1 survives exactly, and so does the largest 64-bit integer inside metadata.
    assert outcome.accepted == {
        5: contact("e@example.com", "E", "Exact", "2024-01-05", age=9007199254740993, metadata={"n": 2**63 - 1})
    }
    assert outcome.rejected == {
        1: [("age", "out_of_range")],
        2: [(None, "invalid_number")],
        3: [("metadata", "invalid_json")],
        4: [(None, "invalid_number")],
    }
    assert outcome.messages[2] == ["1e400 is past the range of a double"]
    assert outcome.messages[4] == ["NaN is not a JSON number"]
    # Stored raw rows hold integers past 64 bits as text (jsonb through orjson takes no more).
    assert outcome.raw[3]["metadata"] == {"n": "123456789012345678901234567890"}


def test_lone_surrogates_reject_their_row_and_a_surrogate_pair_is_one_character() -> None:
    outcome = corpus("json/lone_surrogates.json")
    assert outcome.accepted == {3: contact("c@example.com", "🚀", "Pair", "2024-01-05")}
    assert outcome.rejected == {1: [(None, "invalid_text")], 2: [("metadata", "invalid_json")]}
    assert outcome.raw[1]["first_name"] == "\ufffd"


def test_of_duplicate_keys_the_last_wins() -> None:
    outcome = corpus("json/duplicate_keys.json")
    assert outcome.accepted[1]["email"] == "last@example.com"


def test_an_ndjson_line_that_is_not_a_json_object_is_a_rejected_row() -> None:
    outcome = corpus("json/invalid_lines.ndjson")
    assert list(outcome.accepted) == [1, 5]
    assert outcome.rejected == {2: [(None, "invalid_json")], 3: [(None, "not_an_object")], 4: [(None, "invalid_json")]}
    assert outcome.raw[2] == "{not json}"
    assert outcome.messages[4] == ["not valid JSON: extra data at column 106"]


# ------------------------------------------------------------------ XLSX and Parquet


def test_the_binary_files_are_exactly_what_make_binary_writes() -> None:
    built = make_binary.build()
    committed = {str(path.relative_to(CORPUS)) for path in CORPUS.glob("*/*") if path.suffix in (".xlsx", ".parquet")}
    assert committed == set(built)
    for name, content in built.items():
        if name.endswith(".parquet"):
            # pyarrow writes its own version into a file: another release writes other bytes (the same table for
            # the readable files; the broken ones are held by their outcomes below).
            if name not in ("parquet/truncated.parquet", "parquet/corrupt_pages.parquet"):
                written = pq.read_table(io.BytesIO(content))
                assert pq.read_table(CORPUS / name).equals(written), f"{name}: re-run tests.corpus.make_binary"
            continue
        assert (CORPUS / name).read_bytes() == content, f"{name}: re-run python -m tests.corpus.make_binary"


def test_an_xlsx_sheet_reads_cached_formulas_merged_cells_and_skips_empty_rows_and_columns() -> None:
    outcome = corpus("xlsx/contacts.xlsx")
    assert outcome.failure is None and outcome.unknown_columns == []
    assert outcome.accepted == {
        2: {**ADA, "metadata": {"tags": ["a"]}},  # the id is the formula's cached value
        5: {**ALAN, "id": None},  # a formula never calculated is empty
    }
    # B4:C4 merged: Excel keeps the value in B4 only, so last_name is empty.
    assert outcome.rejected == {4: [("last_name", "required")]}
    assert outcome.raw[4]["first_name"] == "Grace Hopper"
    assert outcome.rows_total == 3


TYPED = parse_declaration(
    b'{"name": "typed", "fields": [{"name": "day", "type": "date"}, {"name": "at", "type": "datetime"},'
    b' {"name": "flag", "type": "boolean"}, {"name": "total", "type": "number"},'
    b' {"name": "count", "type": "integer"}, {"name": "note", "type": "string"}]}',
    "json",
)


@pytest.mark.parametrize(
    ("name", "row_3"),
    [
        # 1900's serial 60 is 1900-02-29, a day Excel counts and the calendar has not: no date.
        ("xlsx/typed_1900.xlsx", None),
        ("xlsx/typed_1904.xlsx", "1904-01-02"),
    ],
)
def test_xlsx_dates_booleans_and_numbers_read_as_excel_stores_them_in_either_epoch(
    name: str, row_3: str | None
) -> None:
    outcome = corpus(name, dataset=TYPED)
    assert outcome.failure is None
    assert outcome.accepted[2] == {
        "day": "2024-01-05",
        "at": "2024-01-05T18:00:00+00:00",
        "flag": True,
        "total": "12.5",
        "count": 7,
        "note": "plain",
    }
    third = {"day": row_3, "at": None, "flag": False, "total": "0.001", "count": -3, "note": None}
    if row_3 is None:
        assert outcome.rejected[3] == [("day", "invalid_date")]
    else:
        assert outcome.accepted[3] == third
    assert outcome.rejected[4] == [("count", "invalid_integer")]
    assert outcome.messages[4] == ["'2.5' is not an integer"]


def test_an_xlsx_sheet_is_picked_by_name_and_a_missing_name_lists_the_sheets() -> None:
    assert corpus("xlsx/two_sheets.xlsx", UploadOptions(sheet="Data")).accepted == {2: ADA}
    first = corpus("xlsx/two_sheets.xlsx")  # the cover sheet has no usable header
    assert first.failure == ("header lacks required columns: email, first_name, last_name, signup_date", 1)
    assert corpus("xlsx/two_sheets.xlsx", UploadOptions(sheet="Missing")).failure == (
        "the workbook has no sheet named 'Missing'; its sheets: 'Cover', 'Data'",
        None,
    )


def test_a_shared_string_table_is_read_within_its_limit_and_fails_past_it() -> None:
    assert corpus("xlsx/shared_strings.xlsx").accepted == {
        2: contact("ada@example.com", "string 0", "string 1999", "2024-01-05")
    }
    bounded = corpus("xlsx/shared_strings.xlsx", limits=Limits(shared_strings_bytes=100_000))
    assert bounded.failure == ("the workbook's shared strings take more than the limit of 100000 bytes", None)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("xlsx/zip_bomb.xlsx", "the workbook inflates more than 100 times its stored size (a decompression bomb?)"),
        ("xlsx/encrypted.xlsx", "the workbook is password-protected (encrypted): save it without a password"),
        ("xlsx/truncated.xlsx", "not an XLSX workbook (not a readable zip archive): File is not a zip file"),
        ("xlsx/dtd.xlsx", "the workbook holds a DTD (XML entities), which no XLSX file has"),
        (
            "xlsx/stored_corrupt.xlsx",
            "the workbook is corrupt (its part xl/worksheets/sheet1.xml):"
            " Bad CRC-32 for file 'xl/worksheets/sheet1.xml'",
        ),
    ],
)
def test_a_hostile_or_broken_workbook_fails_with_the_reason_and_no_rows(name: str, reason: str) -> None:
    outcome = corpus(name)
    assert outcome.failure == (reason, None)
    assert (outcome.accepted, outcome.rejected) == ({}, {})


def test_parquet_typed_columns_and_a_nested_struct_for_the_json_field() -> None:
    outcome = corpus("parquet/contacts.parquet")
    assert outcome.failure is None
    assert outcome.accepted == {
        1: {**ADA, "metadata": {"team": "a", "tags": ["x", "y"]}},
        2: GRACE,
        3: {**ALAN, "metadata": {"team": "c", "tags": []}},
    }
    # Row 4 (in the second row group) has a null date.
    assert outcome.rejected == {4: [("signup_date", "required")]}
    assert outcome.rows_total == 4


def test_a_parquet_map_is_a_json_list_of_pairs_which_an_object_field_rejects() -> None:
    outcome = corpus("parquet/nested_map.parquet")
    assert outcome.rejected == {1: [("metadata", "invalid_json")]}
    assert outcome.messages[1] == ["expected a JSON object, got list"]


def test_a_truncated_parquet_file_fails_unread() -> None:
    outcome = corpus("parquet/truncated.parquet")
    assert outcome.failure is not None and outcome.failure[1] is None
    assert outcome.failure[0].startswith("not a readable Parquet file: Parquet magic bytes not found in footer")


def test_a_parquet_file_with_corrupt_pages_fails_at_its_row_group() -> None:
    outcome = corpus("parquet/corrupt_pages.parquet")
    assert outcome.failure is not None and outcome.failure[1] == 1
    assert outcome.failure[0].startswith("the Parquet file is corrupt in row group 0: ")
    assert outcome.accepted == {}
