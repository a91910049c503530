"""Specification of field types, constraints and defaults of declared datasets (``ingestro.datasets.rules``).

Each type: the spellings it accepts and the one value each becomes (the contract with
the data projection), the spellings it refuses and their stable error code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestro.datasets import Dataset, InvalidDeclaration, declaration_of
from ingestro.datasets.rules import Checked, check_row, compile_dataset, normalize_number


def dataset_of(*fields: dict[str, Any], **options: Any) -> Dataset:
    return declaration_of({"name": "things", "fields": list(fields), **options})


def one(kind: str, **declared: Any) -> Dataset:
    """A dataset of one field ``v`` of type ``kind``."""
    return dataset_of({"name": "v", "type": kind, **declared})


def value_of(dataset: Dataset, raw: Any) -> Any:
    checked = check_row(dataset, {"v": raw})
    assert checked.errors == [], checked.errors
    return checked.values["v"]


def code_of(dataset: Dataset, raw: Any) -> str:
    checked = check_row(dataset, {"v": raw})
    assert checked.content_hash is None
    [error] = checked.errors
    assert error.field == "v" and error.message
    return error.code


def codes(checked: Checked) -> list[tuple[str | None, str]]:
    return [(error.field, error.code) for error in checked.errors]


# --------------------------------------------------------------------------- accepted spellings


ACCEPTED = [
    ("string", {}, "  Ada  ", "Ada"),
    ("string", {}, 42, "42"),
    ("email", {}, " Ada@Example.COM ", "ada@example.com"),
    ("enum", {"values": ["red", "green"]}, " red ", "red"),
    ("integer", {}, "42", 42),
    ("integer", {}, " -7 ", -7),
    ("integer", {}, "42.0", 42),
    ("integer", {}, 42.0, 42),
    ("integer", {}, "9223372036854775807", 2**63 - 1),
    ("integer", {}, "-9223372036854775808", -(2**63)),
    ("number", {}, "12.50", "12.5"),
    ("number", {}, "1e2", "100"),
    ("number", {}, "1.5E-3", "0.0015"),
    ("number", {}, "-0", "0"),
    ("number", {}, "0.000", "0"),
    ("number", {}, "+5", "5"),
    ("number", {}, ".5", "0.5"),
    ("number", {}, "100", "100"),
    ("number", {}, "123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
    ("number", {}, 12.5, "12.5"),
    ("number", {}, 0.1, "0.1"),
    ("number", {}, 1e20, "100000000000000000000"),
    ("number", {}, 10**30, "1000000000000000000000000000000"),
    ("number", {}, -3, "-3"),
    ("boolean", {}, "true", True),
    ("boolean", {}, "FALSE", False),
    ("boolean", {}, "Yes", True),
    ("boolean", {}, "no", False),
    ("boolean", {}, "y", True),
    ("boolean", {}, "N", False),
    ("boolean", {}, "t", True),
    ("boolean", {}, "f", False),
    ("boolean", {}, "1", True),
    ("boolean", {}, "0", False),
    ("boolean", {}, " On ", True),
    ("boolean", {}, "off", False),
    ("boolean", {}, True, True),
    ("boolean", {}, False, False),
    ("boolean", {}, 1, True),
    ("boolean", {}, 0, False),
    ("date", {}, "2024-03-01", "2024-03-01"),
    ("date", {}, "2024/03/01", "2024-03-01"),
    ("date", {}, "03/01/2024", "2024-03-01"),
    ("date", {}, "1 Mar 2024", "2024-03-01"),
    ("date", {"day_first": True}, "03/01/2024", "2024-01-03"),
    ("date", {"day_first": True}, "31/12/2024", "2024-12-31"),
    ("date", {"day_first": True}, "2024-03-01", "2024-03-01"),
    ("date", {"formats": ["%d.%m.%Y"]}, "01.03.2024", "2024-03-01"),
    ("date", {"formats": ["%Y%m%d", "%d.%m.%Y"]}, "20240301", "2024-03-01"),
    ("datetime", {}, "2024-03-01T12:00:00Z", "2024-03-01T12:00:00+00:00"),
    ("datetime", {}, "2024-03-01T13:30:00+01:30", "2024-03-01T12:00:00+00:00"),
    ("datetime", {}, "2024-03-01 12:00", "2024-03-01T12:00:00+00:00"),
    ("datetime", {}, "2024-03-01T12:00:00.250Z", "2024-03-01T12:00:00.250000+00:00"),
    ("datetime", {}, "2024-03-01T12:00:00.000Z", "2024-03-01T12:00:00+00:00"),
    ("datetime", {"formats": ["%d/%m/%Y %H:%M"]}, "01/03/2024 12:00", "2024-03-01T12:00:00+00:00"),
    ("datetime", {"formats": ["%d/%m/%Y %H:%M %z"]}, "01/03/2024 13:00 +0100", "2024-03-01T12:00:00+00:00"),
    ("uuid", {}, "550E8400-E29B-41D4-A716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
    ("uuid", {}, "550e8400e29b41d4a716446655440000", "550e8400-e29b-41d4-a716-446655440000"),
    ("uuid", {}, "{550e8400-e29b-41d4-a716-446655440000}", "550e8400-e29b-41d4-a716-446655440000"),
    ("uuid", {}, "urn:uuid:550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
    ("json", {}, '{"a": [1, 2]}', {"a": [1, 2]}),
    ("json", {}, "[1, 2]", [1, 2]),
    ("json", {}, "42", 42),
    ("json", {}, '"text"', "text"),
    ("json", {}, "true", True),
    ("json", {}, {"a": 1}, {"a": 1}),
    ("json", {}, [1, "x"], [1, "x"]),
    ("json", {}, 3.5, 3.5),
    ("json", {}, False, False),
    ("json_object", {}, '{"a": 1}', {"a": 1}),
    ("json_object", {}, {"a": 1}, {"a": 1}),
]


@pytest.mark.parametrize(("kind", "declared", "raw", "expected"), ACCEPTED)
def test_each_type_accepts_its_spellings_and_makes_one_value_of_them(
    kind: str, declared: dict[str, Any], raw: Any, expected: Any
) -> None:
    value = value_of(one(kind, **declared), raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "kind", ["string", "email", "integer", "number", "boolean", "date", "datetime", "uuid", "json", "json_object"]
)
@pytest.mark.parametrize("raw", [None, "", "   "], ids=["none", "empty", "blank"])
def test_an_absent_or_empty_value_of_any_type_is_null(kind: str, raw: Any) -> None:
    assert value_of(one(kind), raw) is None


def test_a_missing_field_is_null() -> None:
    assert check_row(one("number"), {}).values == {"v": None}


# --------------------------------------------------------------------------- refused spellings


REFUSED = [
    ("string", {}, "a\x00b", "invalid_character"),
    ("string", {}, ["a"], "invalid_type"),
    ("string", {}, True, "invalid_type"),
    ("email", {}, "ada.example.com", "invalid_email"),
    ("enum", {"values": ["red", "green"]}, "Red", "not_in_enum"),
    ("enum", {"values": ["red", "green"]}, "blue", "not_in_enum"),
    ("integer", {}, "4.5", "invalid_integer"),
    ("integer", {}, "1e3", "invalid_integer"),
    ("integer", {}, True, "invalid_integer"),
    ("integer", {}, "9223372036854775808", "out_of_range"),
    ("integer", {}, 2**70, "out_of_range"),
    ("number", {}, "NaN", "invalid_number"),
    ("number", {}, "Infinity", "invalid_number"),
    ("number", {}, "-inf", "invalid_number"),
    ("number", {}, "1,5", "invalid_number"),
    ("number", {}, "1_000", "invalid_number"),
    ("number", {}, "12 kg", "invalid_number"),
    ("number", {}, "0x10", "invalid_number"),
    ("number", {}, "١٢", "invalid_number"),  # Arabic-Indic digits: Decimal would read them
    ("number", {}, True, "invalid_number"),
    ("number", {}, "1e999999999", "out_of_range"),
    ("number", {}, "1e-999999999", "out_of_range"),
    ("boolean", {}, "maybe", "invalid_boolean"),
    ("boolean", {}, "2", "invalid_boolean"),
    ("boolean", {}, 2, "invalid_boolean"),
    ("boolean", {}, 1.5, "invalid_boolean"),
    ("boolean", {}, "truee", "invalid_boolean"),
    ("date", {}, "31/12/2024", "invalid_date"),
    ("date", {}, "2024-02-30", "invalid_date"),
    ("date", {"day_first": True}, "12/31/2024", "invalid_date"),
    ("date", {"formats": ["%d.%m.%Y"]}, "2024-03-01", "invalid_date"),
    ("datetime", {}, "yesterday", "invalid_datetime"),
    ("datetime", {}, "2024-03-01T25:00:00", "invalid_datetime"),
    ("datetime", {}, "2024-03-01T12:00:00+25:00", "invalid_datetime"),
    ("datetime", {}, "0001-01-01T00:30:00+01:00", "invalid_datetime"),  # before year 1 in UTC
    ("datetime", {}, 1709294400, "invalid_datetime"),
    ("datetime", {"formats": ["%d/%m/%Y %H:%M"]}, "2024-03-01T12:00:00Z", "invalid_datetime"),
    ("uuid", {}, "not-a-uuid", "invalid_uuid"),
    ("uuid", {}, "550e8400-e29b-41d4-a716-44665544000", "invalid_uuid"),
    ("uuid", {}, "550e8400-e29b41d4-a716-446655440000", "invalid_uuid"),
    ("uuid", {}, "550e8400_e29b_41d4_a716_446655440000", "invalid_uuid"),
    ("json", {}, "{not json", "invalid_json"),
    ("json", {}, "hello", "invalid_json"),
    ("json", {}, {"a": "x\x00"}, "invalid_character"),
    ("json", {}, {"n": 2**70}, "invalid_json"),
    ("json_object", {}, "[1]", "invalid_json"),
]


@pytest.mark.parametrize(("kind", "declared", "raw", "code"), REFUSED)
def test_each_type_refuses_other_spellings_with_its_code(
    kind: str, declared: dict[str, Any], raw: Any, code: str
) -> None:
    assert code_of(one(kind, **declared), raw) == code


# --------------------------------------------------------------------------- datetimes and time zones


PARIS = {"timezone": "Europe/Paris"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("2024-01-15 12:00", "2024-01-15T11:00:00+00:00", id="winter-cet"),
        pytest.param("2024-07-15 12:00", "2024-07-15T10:00:00+00:00", id="summer-cest"),
        pytest.param("2024-07-15T12:00:00Z", "2024-07-15T12:00:00+00:00", id="explicit-z-ignores-zone"),
        pytest.param("2024-07-15T12:00:00-04:00", "2024-07-15T16:00:00+00:00", id="explicit-offset-ignores-zone"),
        # 2024-03-31 02:00-03:00 does not exist in Paris: the offset from before the change (+01:00).
        pytest.param("2024-03-31 02:30", "2024-03-31T01:30:00+00:00", id="spring-gap-fold-0"),
        # 2024-10-27 02:00-03:00 happens twice in Paris: the first time (+02:00, fold=0).
        pytest.param("2024-10-27 02:30", "2024-10-27T00:30:00+00:00", id="autumn-repeat-fold-0"),
        pytest.param("2024-03-01", "2024-02-29T23:00:00+00:00", id="date-alone-is-local-midnight"),
    ],
)
def test_naive_datetimes_are_wall_times_in_the_datasets_zone(raw: str, expected: str) -> None:
    assert value_of(dataset_of({"name": "v", "type": "datetime"}, **PARIS), raw) == expected


def test_a_naive_datetime_in_a_declared_format_takes_the_zone_too() -> None:
    dataset = dataset_of({"name": "v", "type": "datetime", "formats": ["%d.%m.%Y %H:%M"]}, timezone="America/New_York")
    assert value_of(dataset, "01.07.2024 08:00") == "2024-07-01T12:00:00+00:00"


# --------------------------------------------------------------------------- constraints


CONSTRAINED = [
    ("integer", {"minimum": 0}, "-1", "below_minimum"),
    ("integer", {"maximum": 10}, "11", "above_maximum"),
    ("number", {"minimum": "0.5"}, "0.49", "below_minimum"),
    ("number", {"maximum": 1}, "1.0001", "above_maximum"),
    ("string", {"min_length": 2}, "a", "too_short"),
    ("string", {"max_length": 3}, "abcd", "too_long"),
    ("email", {"max_length": 10}, "ada@example.com", "too_long"),
    ("enum", {"values": ["aa", "b"], "min_length": 2}, "b", "too_short"),
    ("string", {"pattern": "[A-Z]{2}[0-9]+"}, "AB12x", "pattern_mismatch"),
    ("string", {"pattern": "[A-Z]{2}"}, "xAB", "pattern_mismatch"),
    ("string", {"values": ["S", "M", "L"]}, "XL", "not_in_enum"),
]


@pytest.mark.parametrize(("kind", "declared", "raw", "code"), CONSTRAINED)
def test_a_value_breaking_a_declared_constraint_is_refused_with_its_code(
    kind: str, declared: dict[str, Any], raw: Any, code: str
) -> None:
    assert code_of(one(kind, **declared), raw) == code


@pytest.mark.parametrize(
    ("kind", "declared", "raw", "expected"),
    [
        ("integer", {"minimum": 0, "maximum": 10}, "0", 0),
        ("integer", {"minimum": 0, "maximum": 10}, "10", 10),
        ("number", {"minimum": "0.5", "maximum": "1"}, "0.50", "0.5"),
        ("number", {"minimum": "0.5", "maximum": "1"}, "1e0", "1"),
        ("string", {"min_length": 2, "max_length": 3}, "  ab  ", "ab"),  # lengths after trimming
        ("string", {"max_length": 2}, "éé", "éé"),  # characters, not bytes
        ("string", {"pattern": "[A-Z]{2}[0-9]+"}, " AB12 ", "AB12"),
        ("string", {"values": ["S", "M"]}, " M ", "M"),
        ("email", {"pattern": ".*@example[.]com"}, "ADA@EXAMPLE.COM", "ada@example.com"),  # the normalized text
    ],
)
def test_values_within_the_constraints_pass(kind: str, declared: dict[str, Any], raw: Any, expected: Any) -> None:
    assert value_of(one(kind, **declared), raw) == expected


def test_constraints_do_not_apply_to_an_absent_optional_value() -> None:
    assert value_of(one("string", min_length=3, pattern="x+"), "") is None


def test_a_row_reports_every_failing_field_each_with_its_code() -> None:
    dataset = dataset_of(
        {"name": "code", "type": "string", "required": True, "pattern": "[A-Z]+"},
        {"name": "size", "type": "enum", "values": ["S", "M"]},
        {"name": "price", "type": "number", "minimum": 0},
        {"name": "active", "type": "boolean"},
        {"name": "ok", "type": "string"},
        {"name": "when", "type": "date", "required": True},
    )
    checked = check_row(dataset, {"code": "abc", "size": "XL", "price": "-1", "active": "maybe", "ok": "fine"})
    assert checked.content_hash is None
    assert codes(checked) == [
        ("code", "pattern_mismatch"),
        ("size", "not_in_enum"),
        ("price", "below_minimum"),
        ("active", "invalid_boolean"),
        ("when", "required"),
    ]
    assert all(error.message for error in checked.errors)


# --------------------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    ("kind", "default", "expected"),
    [
        ("string", "  none given ", "none given"),
        ("integer", "7", 7),
        ("integer", 7, 7),
        ("number", "2.50", "2.5"),
        ("number", 0.5, "0.5"),
        ("boolean", "yes", True),
        ("boolean", False, False),
        ("date", "1 Jan 2024", "2024-01-01"),
        ("datetime", "2024-01-01 00:00", "2024-01-01T00:00:00+00:00"),
        ("uuid", "550E8400E29B41D4A716446655440000", "550e8400-e29b-41d4-a716-446655440000"),
        ("json", '{"a": 1}', {"a": 1}),
        ("enum", "b", "b"),
    ],
)
def test_a_missing_or_empty_value_takes_the_default_normalized_like_a_value(
    kind: str, default: Any, expected: Any
) -> None:
    declared: dict[str, Any] = {"default": default}
    if kind == "enum":
        declared["values"] = ["a", "b"]
    dataset = one(kind, **declared)
    assert value_of(dataset, "") == expected
    assert check_row(dataset, {}).values == {"v": expected}
    assert check_row(dataset, {}).content_hash == check_row(dataset, {"v": default}).content_hash


def test_a_given_value_wins_over_the_default() -> None:
    assert value_of(one("integer", default=7), "3") == 3


def test_json_defaults_are_not_shared_between_rows() -> None:
    dataset = one("json", default='{"tags": []}')
    first = check_row(dataset, {}).values["v"]
    first["tags"].append("x")
    assert check_row(dataset, {}).values["v"] == {"tags": []}


@pytest.mark.parametrize(
    ("kind", "declared", "code"),
    [
        ("integer", {"default": "seven"}, "invalid_integer"),
        ("integer", {"default": -1, "minimum": 0}, "below_minimum"),
        ("date", {"default": "31/12/2024"}, "invalid_date"),
        ("enum", {"default": "c", "values": ["a", "b"]}, "not_in_enum"),
        ("string", {"default": "toolong", "max_length": 3}, "too_long"),
        ("boolean", {"default": "maybe"}, "invalid_boolean"),
    ],
)
def test_a_default_that_fails_its_own_field_is_an_invalid_declaration(
    kind: str, declared: dict[str, Any], code: str
) -> None:
    dataset = one(kind, **declared)
    with pytest.raises(InvalidDeclaration) as caught:
        compile_dataset(dataset)
    message = str(caught.value)
    assert "field v" in message and "default" in message and code in message


def test_compile_dataset_is_cached_per_dataset() -> None:
    dataset = one("string")
    assert compile_dataset(dataset) is compile_dataset(dataset)
    assert compile_dataset(dataset) is compile_dataset(one("string"))  # equal declarations are one


# --------------------------------------------------------------------------- number canonical text


NUMBERS = st.decimals(min_value=-(10**40), max_value=10**40, allow_nan=False, allow_infinity=False)


@given(number=NUMBERS, spelling=st.sampled_from(["{:f}", "{:e}", "{}"]))
def test_a_number_keeps_its_exact_value_in_one_canonical_spelling(number: Decimal, spelling: str) -> None:
    canonical = normalize_number(spelling.format(number))
    assert canonical is not None
    assert Decimal(canonical) == number
    assert "e" not in canonical.lower() and canonical != "-0"
    assert "." not in canonical or not canonical.endswith(("0", "."))
    assert normalize_number(canonical) == canonical
