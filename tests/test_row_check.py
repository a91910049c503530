"""The generated row check (``ingestro.datasets.rules._fields_check``) and the normalizers' fast paths.

A row's check is one function generated per dataset; it must do for each field exactly
what that field's check does alone, and hash exactly the row's content.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestro.datasets import Dataset, declaration_of
from ingestro.datasets.rules import check_row

FIELDS: list[dict[str, Any]] = [
    {"name": "s", "type": "string", "min_length": 2, "max_length": 5},
    {"name": "r", "type": "string", "required": True, "pattern": "[a-z]+"},
    {"name": "e", "type": "email"},
    {"name": "en", "type": "enum", "values": ["a", "b"], "default": "a"},
    {"name": "i", "type": "integer", "minimum": -5, "maximum": 100},
    {"name": "i2", "type": "integer", "default": 7},
    {"name": "n", "type": "number", "maximum": 10.5},
    {"name": "b", "type": "boolean", "default": True},
    {"name": "d", "type": "date", "required": True},
    {"name": "dt", "type": "datetime"},
    {"name": "u", "type": "uuid"},
    {"name": "j", "type": "json"},
    {"name": "jo", "type": "json_object", "default": '{"k": [1]}'},
]
ROW = declaration_of({"name": "things", "fields": FIELDS})
ALONE = {field["name"]: declaration_of({"name": "things", "fields": [field]}) for field in FIELDS}
DEFAULTS = {"en": "a", "i2": 7, "b": True, "jo": {"k": [1]}}

RAW = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "  ab  ",
            "abcdef",
            "a\x00b",
            "ab@example.com",
            "12",
            "007",
            "+5",
            "-3",
            "1.5",
            "123456789012345678",
            "1234567890123456789",
            "99999999999999999999",
            "１２",
            "yes",
            "2024-01-05",
            "05/01/2024",
            "2024-02-30",
            "2024-03-01T12:00:00Z",
            "123e4567-e89b-12d3-a456-426614174000",
            "{}",
            '{"a": 1}',
            "[1]",
            '{"a": "\\u0000"}',
            '["\\u0000"]',
            '{"a": "\\\\u0000"}',
            "null",
            "{bad",
            "a\ud800",
        ]
    ),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)


def alone(name: str, raw: Any) -> tuple[Any, list[tuple[str | None, str, str]]]:
    """What the dataset of only the field ``name`` makes of ``raw``: its value and the field's errors."""
    checked = check_row(ALONE[name], {name: raw})
    errors = [(error.field, error.code, error.message) for error in checked.errors if error.field is not None]
    return checked.values.get(name), errors


@pytest.mark.slow
@settings(max_examples=500)
@given(st.fixed_dictionaries({}, optional={field["name"]: RAW for field in FIELDS}))
def test_a_row_is_checked_field_by_field_as_each_field_alone(record: dict[str, Any]) -> None:
    checked = check_row(ROW, record)
    errors = []
    for field in FIELDS:
        name = field["name"]
        value, field_errors = alone(name, record.get(name))
        errors += field_errors
        if field_errors:
            assert name not in checked.values
        else:
            assert checked.values[name] == value
    if errors:
        assert [(error.field, error.code, error.message) for error in checked.errors] == errors
        assert checked.content_hash is None
        return
    assert list(checked.values) == [field["name"] for field in FIELDS]
    content = {
        name: value for name, value in checked.values.items() if value is not None and value != DEFAULTS.get(name)
    }
    try:
        expected = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except orjson.JSONEncodeError:  # text that is not valid Unicode: the row's one error
        assert [(error.field, error.code) for error in checked.errors] == [(None, "invalid_text")]
        assert checked.content_hash is None
    else:
        assert checked.errors == []
        assert checked.content_hash == expected


def one(kind: str) -> Dataset:
    return declaration_of({"name": "things", "fields": [{"name": "v", "type": kind}]})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456789012345678", 123456789012345678),
        ("000000000000000001", 1),
        ("9223372036854775807", 2**63 - 1),
        ("0000000000000000000001", "out_of_range"),
        ("９", "invalid_integer"),
        ("²", "invalid_integer"),
        (" 42 ", 42),
        ("", None),
    ],
)
def test_integer_text_with_and_without_the_plain_digits_shortcut(raw: str, expected: Any) -> None:
    checked = check_row(one("integer"), {"v": raw})
    assert (checked.errors[0].code if checked.errors else checked.values["v"]) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("json_object", '{"a": "\\u0000"}', "invalid_character"),
        ("json_object", '{"\\u0000": 1}', "invalid_character"),
        ("json_object", '["\\u0000"]', "invalid_json"),  # not an object, judged first
        ("json_object", '{"a": "\\\\u0000"}', {"a": "\\u0000"}),
        ("json", '"\\u0000"', "invalid_character"),
        ("json", '{"a": ["\\\\u0000"]}', {"a": ["\\u0000"]}),
        ("json", '{"a": 18446744073709551616}', {"a": 1.8446744073709552e19}),
    ],
)
def test_json_text_is_judged_storable_as_before(kind: str, raw: str, expected: Any) -> None:
    checked = check_row(one(kind), {"v": raw})
    assert (checked.errors[0].code if checked.errors else checked.values["v"]) == expected
