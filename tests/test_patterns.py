"""Field patterns match in linear time (RE2): no declared pattern can freeze the parser or the API."""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest

from ingestro.datasets import InvalidDeclaration, declaration_of
from ingestro.datasets.patterns import MAX_PATTERN_CHARS
from ingestro.datasets.rules import check_row
from ingestro.domain.events import RowsRejected
from ingestro.domain.limits import DEFAULT_LIMITS
from ingestro.formats.parsing import parse_file
from tests.stack import Stack
from tests.test_api import assert_problem

#: The probe of the issue: 31 s on a 31-character cell with Python's re, doubling with each character more.
CATASTROPHIC = "^(a+)+$"


def coded(pattern: str, **field: object) -> dict[str, object]:
    return {"name": "codes", "fields": [{"name": "code", "type": "string", "pattern": pattern, **field}]}


def test_the_catastrophic_pattern_checks_a_long_hostile_cell_at_once_in_the_parser(tmp_path: Path) -> None:
    dataset = declaration_of(coded(CATASTROPHIC))
    hostile = "a" * 100_000 + "!"
    path = tmp_path / "codes.csv"
    path.write_text("code\n" + "\n".join([hostile, "a" * 31 + "!", "aaaa"] * 20) + "\n")
    started = time.monotonic()
    events = list(parse_file("job", path, "csv", dataset, batch_size=1000))
    assert time.monotonic() - started < 2
    rejected = [row for event in events if isinstance(event, RowsRejected) for row in event.rows]
    assert len(rejected) == 40
    assert {error.code for row in rejected for error in row.errors} == {"pattern_mismatch"}
    started = time.monotonic()
    assert check_row(dataset, {"code": hostile}).errors[0].code == "pattern_mismatch"  # the record path too
    assert check_row(dataset, {"code": "a" * 100_000}).errors == []
    assert time.monotonic() - started < 1


def test_a_pattern_still_matches_the_whole_value_with_its_usual_meaning() -> None:
    dataset = declaration_of(coded(r"(?i)[a-z]{2}-\d{3}(?:-x)?"))
    for value in ("ab-123", "AB-123-x", " ab-123 "):
        assert check_row(dataset, {"code": value}).errors == [], value
    for value in ("ab-1234", "xab-123", "ab-123-", "ab-12\n"):
        assert [e.code for e in check_row(dataset, {"code": value}).errors] == ["pattern_mismatch"], value
    unicode = declaration_of(coded(r"\p{Lu}\p{Ll}+", max_length=100))
    assert check_row(unicode, {"code": "Émile"}).errors == []
    # An undecodable byte (a lone surrogate) is a value that does not match, never an error.
    assert [e.code for e in check_row(dataset, {"code": "ab-\udc80"}).errors] == ["pattern_mismatch"]


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"(a)\1", "invalid escape sequence: \\1"),
        (r"(?=a)a", "(?="),
        (r"(?!b)a", "(?!"),
        (r"(?<=a)b", "(?<"),
        (r"(?>a+)", "(?>"),
        (r"a++", "++"),
        (r"a\Z", "\\Z"),
        (r"(a", "missing )"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_saying_what_is_supported(pattern: str, construct: str) -> None:
    with pytest.raises(InvalidDeclaration) as refused:
        declaration_of(coded(pattern))
    message = str(refused.value)
    assert f"field code: pattern {pattern!r} is not supported" in message
    assert construct in message
    assert "no backreferences (\\1), lookahead or lookbehind" in message


def test_a_pattern_too_costly_for_the_longest_value_is_refused_unless_max_length_bounds_it() -> None:
    costly = "[ab]*a[ab]{1000}[ab]{1000}"
    with pytest.raises(InvalidDeclaration, match="too costly to match against values of up to 131072 characters"):
        declaration_of(coded(costly))
    with pytest.raises(InvalidDeclaration, match="declare a max_length of at most"):
        declaration_of(coded(costly, max_length=100_000))
    dataset = declaration_of(coded(costly, max_length=5000))
    started = time.monotonic()
    assert [e.code for e in check_row(dataset, {"code": "ab" * 2500}).errors] == ["pattern_mismatch"]
    assert [e.code for e in check_row(dataset, {"code": "ab" * 100_000}).errors] == ["too_long"]
    assert time.monotonic() - started < 1
    with pytest.raises(InvalidDeclaration, match=f"at most {MAX_PATTERN_CHARS} characters"):
        declaration_of(coded("a" * (MAX_PATTERN_CHARS + 1)))


def test_the_costliest_pattern_accepted_checks_the_longest_cell_within_its_budget() -> None:
    # The fast automaton gives up on this one (its states explode); the fallback visits every state.
    dataset = declaration_of(coded("[ab]*a[ab]{249}"))  # 255 steps per character: just within the budget
    with pytest.raises(InvalidDeclaration, match="too costly"):
        declaration_of(coded("[ab]*a[ab]{251}"))
    cell = "".join(random.Random(7).choice("ab") for _ in range(DEFAULT_LIMITS.field_chars))
    started = time.monotonic()
    check_row(dataset, {"code": cell})
    assert time.monotonic() - started < 3  # about 0.2 s on an idle core


async def test_put_datasets_checks_a_default_against_the_catastrophic_pattern_at_once(stack: Stack) -> None:
    declaration = coded(CATASTROPHIC, default="a" * 60 + "!")
    started = time.monotonic()
    response = await stack.client.put("/datasets/codes", content=orjson.dumps(declaration))
    assert time.monotonic() - started < 2
    assert_problem(response, 422)
    assert "the default" in response.json()["detail"] and "pattern_mismatch" in response.json()["detail"]
    fine = coded(CATASTROPHIC, default="a" * 60)
    assert (await stack.client.put("/datasets/codes", content=orjson.dumps(fine))).status_code == 201


async def test_put_datasets_answers_an_unsupported_pattern_with_a_422(stack: Stack) -> None:
    response = await stack.client.put("/datasets/codes", content=orjson.dumps(coded(r"(\w+)\s\1")))
    assert_problem(response, 422)
    assert "is not supported" in response.json()["detail"]
