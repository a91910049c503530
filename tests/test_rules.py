"""Specification of the row rules of the ``contacts`` dataset (``ingestro.datasets.rules``)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from ingestro.datasets import Dataset, get_dataset
from ingestro.datasets.rules import (
    Checked,
    Invalid,
    check_row,
    content_hash,
    match_columns,
    normalize_date,
    normalize_email,
    normalize_integer,
    normalize_json_object,
    normalize_string,
)
from ingestro.domain.events import FieldError

CONTACTS: Dataset = get_dataset("contacts")
FIELDS = ("email", "first_name", "last_name", "age", "signup_date", "metadata", "id")
REQUIRED = ("email", "first_name", "last_name", "signup_date")


def valid_record(**overrides: Any) -> dict[str, Any]:
    """A contacts record that passes every rule, with ``overrides`` applied."""
    record: dict[str, Any] = {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "age": 36,
        "signup_date": "2024-01-05",
        "metadata": {"source": "import", "tags": ["a", "b"]},
        "id": "c-1",
    }
    record.update(overrides)
    return record


def check(**overrides: Any) -> Checked:
    return check_row(CONTACTS, valid_record(**overrides))


def accepted_hash(record: dict[str, Any]) -> str:
    checked = check_row(CONTACTS, record)
    assert checked.errors == []
    assert checked.content_hash is not None
    return checked.content_hash


def error_codes(checked: Checked) -> dict[str | None, str]:
    return {error.field: error.code for error in checked.errors}


# --------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada", "Ada"),
        ("  Ada  ", "Ada"),
        ("\tAda Byron\n", "Ada Byron"),
        ("", None),
        ("   ", None),
        ("\t\r\n ", None),
        (None, None),
    ],
)
def test_strings_are_trimmed_and_blank_becomes_null(raw: Any, expected: str | None) -> None:
    assert normalize_string(raw) == expected


def test_inner_whitespace_and_case_of_strings_are_kept() -> None:
    assert normalize_string("  Mary  Ann ") == "Mary  Ann"
    assert normalize_string("McDONALD") == "McDONALD"


@pytest.mark.parametrize("raw", ["a\x00b", "\x00", "  x\x00  "])
def test_strings_with_nul_are_rejected_as_invalid_character(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_string(raw)
    assert caught.value.code == "invalid_character"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "Ada\x00"),
        ("email", "ada\x00@example.com"),
        ("signup_date", "2024-01-05\x00"),
        ("age", "4\x002"),
        ("id", "\x00"),
    ],
)
def test_nul_in_any_text_field_rejects_the_row_as_invalid_character(field: str, value: str) -> None:
    checked = check(**{field: value})
    assert error_codes(checked) == {field: "invalid_character"}
    assert checked.content_hash is None


# --------------------------------------------------------------------------- emails


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace@Example.COM  ", "ada.lovelace@example.com"),
        ("ADA+tag@sub.example.org", "ada+tag@sub.example.org"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("a_b-c@ex-ample.co.uk", "a_b-c@ex-ample.co.uk"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_emails_are_trimmed_and_lowercased(raw: Any, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("ada.example.com", id="missing-at"),
        pytest.param("ada@@example.com", id="double-at"),
        pytest.param("ada@bob@example.com", id="two-ats"),
        pytest.param("ada lovelace@example.com", id="space-in-local"),
        pytest.param("ada@exa mple.com", id="space-in-domain"),
        pytest.param("ada@localhost", id="no-tld"),
        pytest.param("ada@example.c", id="one-letter-tld"),
        pytest.param("ada@example.c0m", id="digit-in-tld"),
        pytest.param("ada..lovelace@example.com", id="double-dot-local"),
        pytest.param("ada@example..com", id="double-dot-domain"),
        pytest.param("ada@example.com.", id="trailing-dot"),
        pytest.param(".ada@example.com", id="leading-dot-local"),
        pytest.param("ada.@example.com", id="dot-before-at"),
        pytest.param("ada@.example.com", id="dot-after-at"),
        pytest.param("ada@-example.com", id="label-starts-with-hyphen"),
        pytest.param("ada@example-.com", id="label-ends-with-hyphen"),
        pytest.param("@example.com", id="empty-local"),
        pytest.param("ada@", id="empty-domain"),
        pytest.param("ada@example.com\nbob@example.com", id="newline"),
        pytest.param("<ada@example.com>", id="angle-brackets"),
        pytest.param("Ada <ada@example.com>", id="display-name"),
        pytest.param("a" * 250 + "@example.com", id="longer-than-254"),
        pytest.param(42, id="number"),
    ],
)
def test_invalid_emails_are_rejected_as_invalid_email(raw: Any) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_email(raw)
    assert caught.value.code == "invalid_email"


def test_invalid_email_in_a_row_is_reported_on_the_email_field() -> None:
    checked = check(email="not an email")
    assert checked.errors[0].field == "email"
    assert checked.errors[0].code == "invalid_email"
    assert checked.errors[0].message  # people read it


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("2024-01-05", id="iso"),
        pytest.param("2024/01/05", id="iso-slashes"),
        pytest.param("01/05/2024", id="month-first"),
        pytest.param("1/5/2024", id="month-first-unpadded"),
        pytest.param("5 Jan 2024", id="d-mon-yyyy"),
        pytest.param("05 Jan 2024", id="dd-mon-yyyy"),
        pytest.param("5 January 2024", id="d-month-yyyy"),
        pytest.param("5 jan 2024", id="lowercase-month"),
        pytest.param("5 JANUARY 2024", id="uppercase-month"),
        pytest.param("5 Jan. 2024", id="abbreviation-dot"),
        pytest.param("  2024-01-05  ", id="surrounding-spaces"),
    ],
)
def test_accepted_date_formats_normalize_to_iso(raw: str) -> None:
    assert normalize_date(raw) == "2024-01-05"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12/31/2023", "2023-12-31"),
        ("02/29/2024", "2024-02-29"),
        ("29 Feb 2024", "2024-02-29"),
        ("1 Sept 2024", "2024-09-01"),
        ("1 Sep 2024", "2024-09-01"),
        ("31 December 1999", "1999-12-31"),
        ("3 May 2024", "2024-05-03"),
    ],
)
def test_dates_normalize_to_the_same_calendar_day(raw: str, expected: str) -> None:
    assert normalize_date(raw) == expected


@pytest.mark.parametrize(("raw"), ["", "   ", None])
def test_blank_date_is_null(raw: str | None) -> None:
    assert normalize_date(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("02/30/2024", id="feb-30"),
        pytest.param("02/29/2023", id="feb-29-non-leap"),
        pytest.param("2024-13-01", id="month-13"),
        pytest.param("2024-00-10", id="month-0"),
        pytest.param("2024-01-32", id="day-32"),
        pytest.param("13/01/2024", id="day-first-is-not-accepted"),
        pytest.param("31 Feb 2024", id="text-month-impossible-day"),
        pytest.param("0000-01-01", id="year-zero"),
    ],
)
def test_impossible_dates_are_rejected_as_invalid_date(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_date(raw)
    assert caught.value.code == "invalid_date"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("2024-01-05T00:00:00", id="datetime"),
        pytest.param("2024-01-05 10:00", id="date-and-time"),
        pytest.param("20240105", id="compact"),
        pytest.param("2024-1-5", id="iso-unpadded"),
        pytest.param("2024.01.05", id="dots"),
        pytest.param("05-01-2024", id="dashes-day-first"),
        pytest.param("01/05/24", id="two-digit-year"),
        pytest.param("01/05", id="no-year"),
        pytest.param("Jan 5 2024", id="month-first-text"),
        pytest.param("January 5, 2024", id="us-long"),
        pytest.param("5 Foo 2024", id="unknown-month"),
        pytest.param("5 Jan 24", id="text-two-digit-year"),
        pytest.param("yesterday", id="word"),
        pytest.param("2024-01/05", id="mixed-separators"),
        pytest.param(20240105, id="number"),
    ],
)
def test_other_date_formats_are_rejected_as_invalid_date(raw: Any) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_date(raw)
    assert caught.value.code == "invalid_date"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("2024-+1-05", id="signed-month"),
        pytest.param("2024-01- 5", id="space-in-day"),
        pytest.param("2024- 1-05", id="space-in-month"),
        pytest.param("+202-01-05", id="signed-three-digit-year"),
        pytest.param("01/+5/2024", id="signed-day-month-first"),
        pytest.param("1 /05/2024", id="space-before-slash"),
        pytest.param("1_0/05/2024", id="underscore-digit-separator"),
    ],
)
def test_date_parts_must_be_plain_digits(raw: str) -> None:
    # The documented formats are made of digits only; int() is more lenient
    # (signs, inner spaces, "_" separators), which must not leak into dates.
    with pytest.raises(Invalid) as caught:
        normalize_date(raw)
    assert caught.value.code == "invalid_date"


# --------------------------------------------------------------------------- integers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", 42),
        (42, 42),
        (42.0, 42),
        (" 42 ", 42),
        ("42.0", 42),
        ("+42", 42),
        ("0042", 42),
        ("0", 0),
        (0, 0),
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_integers_accept_text_numbers_and_whole_floats(raw: Any, expected: int | None) -> None:
    assert normalize_integer(raw) == expected


def test_integer_result_is_an_int_not_a_float() -> None:
    assert type(normalize_integer(42.0)) is int
    assert type(normalize_integer("42.0")) is int


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("4.5", id="fraction-text"),
        pytest.param(4.5, id="fraction-float"),
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param("abc", id="word"),
        pytest.param("4 2", id="inner-space"),
        pytest.param("1e3", id="exponent"),
        pytest.param("0x2A", id="hex"),
        pytest.param("42abc", id="trailing-letters"),
        pytest.param("1,000", id="thousands-separator"),
        pytest.param("1_000", id="underscore-separator"),
        pytest.param(float("inf"), id="infinity"),
        pytest.param(float("nan"), id="nan"),
    ],
)
def test_non_integers_are_rejected_as_invalid_integer(raw: Any) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_integer(raw)
    assert caught.value.code == "invalid_integer"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(2**63, id="int-2**63"),
        pytest.param(-(2**63) - 1, id="int-below-bigint"),
        pytest.param("9223372036854775808", id="text-2**63"),
        pytest.param("99999999999999999999999999", id="text-26-digits"),
        pytest.param(1e20, id="float-1e20"),
        pytest.param("9" * 5000, id="text-5000-digits"),
    ],
)
def test_integers_outside_bigint_are_rejected_as_out_of_range(raw: Any) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_integer(raw)
    assert caught.value.code == "out_of_range"


@pytest.mark.parametrize("raw", [2**63 - 1, -(2**63), "9223372036854775807"])
def test_bigint_limits_are_accepted(raw: Any) -> None:
    assert normalize_integer(raw) == int(raw)


@pytest.mark.parametrize(("raw", "code"), [(-1, "below_minimum"), ("-1", "below_minimum"), ("0", None)])
def test_age_has_a_minimum_of_zero(raw: Any, code: str | None) -> None:
    checked = check(age=raw)
    assert error_codes(checked) == ({} if code is None else {"age": code})


def test_huge_age_in_a_row_is_an_out_of_range_error_not_a_crash() -> None:
    checked = check(age="9" * 5000)
    assert error_codes(checked) == {"age": "out_of_range"}


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ({}, {}),
        ('{"a": 1, "b": [1, 2], "c": {"d": null}}', {"a": 1, "b": [1, 2], "c": {"d": None}}),
        ('  {"a": "x"}  ', {"a": "x"}),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_metadata_is_a_json_object_given_as_dict_or_json_text(raw: Any, expected: dict[str, Any] | None) -> None:
    assert normalize_json_object(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("[1, 2]", id="array-text"),
        pytest.param("42", id="number-text"),
        pytest.param('"text"', id="string-text"),
        pytest.param("null", id="null-text"),
        pytest.param("true", id="bool-text"),
        pytest.param("{not json}", id="malformed"),
        pytest.param('{"a": 1', id="truncated"),
        pytest.param([1, 2], id="list"),
        pytest.param(42, id="number"),
        pytest.param({1: "a"}, id="non-string-key"),
    ],
)
def test_metadata_that_is_not_a_json_object_is_rejected_as_invalid_json(raw: Any) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_json_object(raw)
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"a": "x\x00y"}, id="dict-value"),
        pytest.param({"a\x00": 1}, id="dict-key"),
        pytest.param({"a": {"b": ["\x00"]}}, id="nested"),
        pytest.param('{"a": "\\u0000"}', id="escaped-in-text"),
    ],
)
def test_metadata_with_nul_is_rejected_as_invalid_character(raw: Any) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_json_object(raw)
    assert caught.value.code == "invalid_character"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"path": "\\u0000"}, id="dict-literal-backslash-u0000"),
        pytest.param('{"path": "\\\\u0000"}', id="text-escaped-backslash-u0000"),
    ],
)
def test_metadata_with_a_literal_backslash_u0000_text_is_not_a_nul(raw: Any) -> None:
    # Six ordinary characters (backslash, "u", "0000") are not a NUL character.
    assert normalize_json_object(raw) == {"path": "\\u0000"}


# --------------------------------------------------------------------------- validation


def test_a_valid_row_is_accepted_with_normalized_values() -> None:
    checked = check_row(
        CONTACTS,
        {
            "email": "  ADA@Example.com ",
            "first_name": " Ada ",
            "last_name": "Lovelace ",
            "age": " 36 ",
            "signup_date": "5 Jan 2024",
            "metadata": '{"vip": true}',
            "id": " c-1 ",
        },
    )
    assert checked.errors == []
    assert checked.values == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "age": 36,
        "signup_date": "2024-01-05",
        "metadata": {"vip": True},
        "id": "c-1",
    }


@pytest.mark.parametrize("field", REQUIRED)
@pytest.mark.parametrize("value", [None, "", "   "], ids=["none", "empty", "blank"])
def test_required_field_empty_is_rejected_as_required(field: str, value: str | None) -> None:
    checked = check(**{field: value})
    assert checked.errors == [FieldError(field, "required", f"{field} is required")]
    assert checked.content_hash is None


@pytest.mark.parametrize("field", REQUIRED)
def test_required_field_absent_is_rejected_as_required(field: str) -> None:
    record = valid_record()
    del record[field]
    checked = check_row(CONTACTS, record)
    assert error_codes(checked) == {field: "required"}


@pytest.mark.parametrize("field", ["age", "metadata", "id"])
def test_optional_fields_may_be_absent_or_empty(field: str) -> None:
    record = valid_record()
    del record[field]
    absent = check_row(CONTACTS, record)
    empty = check(**{field: ""})
    assert absent.errors == [] and empty.errors == []
    assert absent.values[field] is None and empty.values[field] is None


def test_a_row_with_several_bad_fields_reports_one_error_per_field() -> None:
    checked = check_row(
        CONTACTS,
        {
            "email": "nope",
            "first_name": "",
            "last_name": "Lovelace",
            "age": "abc",
            "signup_date": "02/30/2024",
            "metadata": "[1]",
            "id": "x\x00",
        },
    )
    assert checked.content_hash is None
    assert [(e.field, e.code) for e in checked.errors] == [
        ("email", "invalid_email"),
        ("first_name", "required"),
        ("age", "invalid_integer"),
        ("signup_date", "invalid_date"),
        ("metadata", "invalid_json"),
        ("id", "invalid_character"),
    ]
    assert all(isinstance(e, FieldError) and e.message for e in checked.errors)


def test_an_empty_record_reports_every_required_field() -> None:
    checked = check_row(CONTACTS, {})
    assert [(e.field, e.code) for e in checked.errors] == [(name, "required") for name in REQUIRED]


def test_unknown_keys_in_the_record_are_ignored() -> None:
    plain = check_row(CONTACTS, valid_record())
    extra = check_row(CONTACTS, valid_record(nickname="Countess", Email="other@example.com", extra=object()))
    assert extra.errors == []
    assert set(extra.values) == set(FIELDS)
    assert extra.values == plain.values
    assert extra.content_hash == plain.content_hash


def test_optional_absent_fields_become_none_in_values() -> None:
    checked = check_row(
        CONTACTS,
        {"email": "a@example.com", "first_name": "A", "last_name": "B", "signup_date": "2024-01-05"},
    )
    assert checked.errors == []
    assert checked.values == {
        "email": "a@example.com",
        "first_name": "A",
        "last_name": "B",
        "age": None,
        "signup_date": "2024-01-05",
        "metadata": None,
        "id": None,
    }


def test_text_that_is_not_valid_unicode_rejects_the_row_with_a_row_level_error() -> None:
    checked = check(first_name="Ada\ud800")
    assert checked.content_hash is None
    assert [(e.field, e.code) for e in checked.errors] == [(None, "invalid_text")]


# --------------------------------------------------------------------------- hashing


def test_every_declared_field_is_present_in_values_in_declared_order() -> None:
    checked = check_row(
        CONTACTS,
        {"signup_date": "2024-01-05", "last_name": "B", "first_name": "A", "email": "a@example.com"},
    )
    assert tuple(checked.values) == FIELDS


def test_hash_is_sha256_of_sorted_key_json_of_values() -> None:
    checked = check(metadata={"z": 1, "a": {"y": 2, "b": 3}})
    assert checked.content_hash is not None
    expected = hashlib.sha256(orjson.dumps(checked.values, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert checked.content_hash == expected
    assert content_hash(checked.values) == expected


def test_hash_is_64_lowercase_hex_characters() -> None:
    digest = accepted_hash(valid_record())
    assert len(digest) == 64
    assert all(c in "0123456789abcdef" for c in digest)


def test_hash_leaves_out_absent_and_empty_optional_fields() -> None:
    record = valid_record()
    del record["age"], record["metadata"], record["id"]
    values = dict(check_row(CONTACTS, record).values)
    assert values["age"] is None and values["metadata"] is None and values["id"] is None
    assert accepted_hash(record) == content_hash({name: value for name, value in values.items() if value is not None})
    assert accepted_hash(record) == accepted_hash(valid_record(age="", metadata="  ", id=None))


def test_key_order_of_the_input_does_not_change_the_hash() -> None:
    record = valid_record()
    reordered = dict(reversed(list(record.items())))
    assert list(reordered) != list(record)
    assert accepted_hash(reordered) == accepted_hash(record)


@pytest.mark.parametrize(
    ("field", "csv_text", "json_value"),
    [
        ("age", "42", 42),
        ("age", " 42 ", 42.0),
        ("age", "42.0", 42),
        ("metadata", '{"b": [1, 2], "a": null}', {"a": None, "b": [1, 2]}),
    ],
)
def test_csv_text_and_json_values_that_mean_the_same_hash_the_same(field: str, csv_text: str, json_value: Any) -> None:
    assert accepted_hash(valid_record(**{field: csv_text})) == accepted_hash(valid_record(**{field: json_value}))


@pytest.mark.parametrize(
    ("field", "changed"),
    [
        ("email", "grace@example.com"),
        ("first_name", "Augusta"),
        ("last_name", "Byron"),
        ("age", 37),
        ("age", None),
        ("signup_date", "2024-01-06"),
        ("metadata", {"source": "import", "tags": ["b", "a"]}),
        ("metadata", None),
        ("id", "c-2"),
        ("id", None),
    ],
)
def test_a_changed_field_changes_the_hash(field: str, changed: Any) -> None:
    assert accepted_hash(valid_record(**{field: changed})) != accepted_hash(valid_record())


@pytest.mark.parametrize("email", ["ada@example.com", "  ADA@EXAMPLE.COM", "Ada@Example.Com  ", "\tada@example.COM\n"])
def test_email_whitespace_and_case_do_not_change_the_hash(email: str) -> None:
    assert accepted_hash(valid_record(email=email)) == accepted_hash(valid_record())


@pytest.mark.parametrize("signup_date", ["2024-01-05", "2024/01/05", "01/05/2024", "5 Jan 2024", "5 January 2024"])
def test_date_spelling_does_not_change_the_hash(signup_date: str) -> None:
    assert accepted_hash(valid_record(signup_date=signup_date)) == accepted_hash(valid_record())


def test_nested_metadata_key_order_does_not_change_the_hash() -> None:
    one = {"a": 1, "b": {"x": 1, "y": [{"p": 1, "q": 2}]}}
    two = {"b": {"y": [{"q": 2, "p": 1}], "x": 1}, "a": 1}
    assert accepted_hash(valid_record(metadata=one)) == accepted_hash(valid_record(metadata=two))
    assert accepted_hash(valid_record(metadata=orjson.dumps(two).decode())) == accepted_hash(valid_record(metadata=one))


def test_array_order_in_metadata_does_change_the_hash() -> None:
    assert accepted_hash(valid_record(metadata={"t": [1, 2]})) != accepted_hash(valid_record(metadata={"t": [2, 1]}))


# --------------------------------------------------------------------------- match_columns


def test_header_matching_is_case_insensitive_and_ignores_surrounding_spaces() -> None:
    header = [" Email", "FIRST_NAME ", "Last_Name", " age ", "SignUp_Date", "metadata", "ID"]
    match = match_columns(CONTACTS, header)
    assert match.positions == dict(enumerate(FIELDS))
    assert match.unknown == [] and match.duplicates == [] and match.missing_required == []


def test_header_columns_may_come_in_any_order() -> None:
    match = match_columns(CONTACTS, ["signup_date", "last_name", "first_name", "email"])
    assert match.positions == {0: "signup_date", 1: "last_name", 2: "first_name", 3: "email"}
    assert match.missing_required == []


def test_unknown_columns_are_listed_as_written() -> None:
    match = match_columns(CONTACTS, ["email", " Nick Name ", "first_name", "last_name", "signup_date", "e-mail", ""])
    assert match.unknown == [" Nick Name ", "e-mail", ""]
    assert match.positions == {0: "email", 2: "first_name", 3: "last_name", 4: "signup_date"}


@pytest.mark.parametrize(
    ("header", "duplicates"),
    [
        (["email", "first_name", "last_name", "signup_date", "email"], ["email"]),
        (["email", "first_name", "last_name", "signup_date", " EMAIL "], [" EMAIL "]),
        (["email", "first_name", "last_name", "signup_date", "x", "X", "x"], ["X", "x"]),
        (["email", "first_name", "last_name", "signup_date"], []),
    ],
)
def test_duplicate_columns_are_listed(header: list[str], duplicates: list[str]) -> None:
    assert match_columns(CONTACTS, header).duplicates == duplicates


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ([], list(REQUIRED)),
        (["email"], ["first_name", "last_name", "signup_date"]),
        (["age", "metadata", "id"], list(REQUIRED)),
        (["Email", "First_Name", "last_name"], ["signup_date"]),
        (["email", "first_name", "last_name", "signup_date"], []),
        (["emails", "firstname", "last_name", "signup_date"], ["email", "first_name"]),
    ],
)
def test_missing_required_columns_are_listed(header: list[str], missing: list[str]) -> None:
    assert match_columns(CONTACTS, header).missing_required == missing


def test_missing_optional_columns_are_not_an_error() -> None:
    match = match_columns(CONTACTS, ["email", "first_name", "last_name", "signup_date"])
    assert match.missing_required == [] and match.unknown == [] and match.duplicates == []


def test_match_columns_accepts_any_iterable_header() -> None:
    match = match_columns(CONTACTS, iter(["email", "first_name"]))
    assert match.positions == {0: "email", 1: "first_name"}
