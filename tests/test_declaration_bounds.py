"""A declaration's cost is bounded before it is parsed, on every path it takes (API, migrate, dev)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import orjson
import pytest

from ingestro.datasets import InvalidDeclaration, builtin_datasets, parse_declaration
from ingestro.datasets.declaration_bounds import MAX_BYTES, MAX_DEPTH, MAX_FIELDS, MAX_KEY_SEGMENTS
from ingestro.datasets.registry import read_declaration_directory
from tests.stack import Stack
from tests.test_api import assert_problem

HEAD = 'name = "x"\n[[fields]]\nname = "a"\ntype = "string"\n'
#: The probe of the issue: a 200 KB dotted key, on which tomllib grew to 24 GB.
DOTTED = HEAD + "a." * 100_000 + "b = 1\n"

HOSTILE = [
    pytest.param(DOTTED, "toml", "more than 16 segments", id="toml-dotted-key-100k"),
    pytest.param(HEAD + "x = " + "[" * 100_000 + "]" * 100_000, "toml", "deeper than 16", id="toml-arrays-100k"),
    pytest.param(HEAD + "x = " + "{a = " * 50_000, "toml", "deeper than 16", id="toml-inline-tables-50k"),
    pytest.param("[" * 100_000 + "]" * 100_000, "json", "deeper than 16", id="json-arrays-100k"),
    pytest.param('{"a": ' * 30_000 + "1" + "}" * 30_000, "json", "deeper than 16", id="json-objects-30k"),
    pytest.param(HEAD + '"' + "k" * 100_000 + '" = 1', "toml", "longer than 256 characters", id="toml-long-key"),
    pytest.param('{"' + "k" * 100_000 + '": 1}', "json", "longer than 256 characters", id="json-long-key"),
    pytest.param("".join(f"k{i}=1\n" for i in range(21_000)), "toml", "more than 20000 keys", id="toml-keys"),
    pytest.param(HEAD + "#" * (MAX_BYTES + 1), "toml", f"larger than {MAX_BYTES} bytes", id="too-large"),
]


@pytest.mark.parametrize(("text", "syntax", "bound"), HOSTILE)
def test_a_declaration_past_a_bound_is_refused_fast_in_bounded_memory_naming_the_bound(
    text: str, syntax: str, bound: str
) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidDeclaration, match=re.escape(bound)):
        parse_declaration(text.encode(), syntax)
    assert time.monotonic() - started < 1
    tracemalloc.start()  # again, measured (tracing slows it down)
    try:
        with pytest.raises(InvalidDeclaration):
            parse_declaration(text.encode(), syntax)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, peak  # the text itself is at most 256 KiB


def test_a_bound_holds_at_its_edge() -> None:
    dotted = HEAD + "a." * (MAX_KEY_SEGMENTS - 1) + "b = 1\n"  # exactly MAX_KEY_SEGMENTS segments
    with pytest.raises(InvalidDeclaration, match="extra fields found"):
        parse_declaration(dotted, "toml")  # parsed, then refused only as a declaration
    nested = '{"name": "x", "fields": [{"name": "a", "type": "string"}], "x": ' + "[" * (MAX_DEPTH - 1)
    with pytest.raises(InvalidDeclaration, match="not valid JSON"):
        parse_declaration(nested + "]" * (MAX_DEPTH - 1), "json")  # depth 16: the parser reads it
    with pytest.raises(InvalidDeclaration, match="deeper than 16"):
        parse_declaration(nested + "[]" + "]" * (MAX_DEPTH - 1) + "}", "json")


def test_brackets_dots_and_equal_signs_in_strings_and_comments_are_not_structure() -> None:
    text = (
        'name = "x"  # [[[[[[[[[[[[[[[[[[[[ a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r\n'
        "[[fields]]\n"
        'name = "a"\n'
        'type = "string"\n'
        'pattern = "[[[[[[[[[[[[[[[[[[[[a]]]]]]]]]]]]]]]]]]]]"\n'
        "aliases = ['''{{{{{{{{{{{{{{{{{{{{ \"quoted\" ''', "
        '"""a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q = \\"x\\" "" """]\n'
    )
    field = parse_declaration(text, "toml").fields[0]
    assert field.aliases == ('{{{{{{{{{{{{{{{{{{{{ "quoted" ', 'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q = "x" "" ')
    assert field.pattern == "[[[[[[[[[[[[[[[[[[[[a]]]]]]]]]]]]]]]]]]]]"
    as_json = orjson.dumps({"name": "x", "fields": [{"name": "a", "type": "string", "aliases": ["[" * 40 + '"\\']}]})
    assert parse_declaration(as_json, "json").fields[0].aliases == ("[" * 40 + '"\\',)


def test_more_fields_than_a_table_may_have_is_refused() -> None:
    fields = [{"name": f"f{i}", "type": "string"} for i in range(MAX_FIELDS + 1)]
    with pytest.raises(InvalidDeclaration, match=f"at most {MAX_FIELDS} fields"):
        parse_declaration(orjson.dumps({"name": "wide", "fields": fields}), "json")
    assert len(parse_declaration(orjson.dumps({"name": "wide", "fields": fields[:-1]}), "json").fields) == MAX_FIELDS


def test_realistic_declarations_still_parse() -> None:
    assert "contacts" in builtin_datasets()
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    orders = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    dataset = parse_declaration(orders, "toml")
    assert (dataset.name, dataset.key, len(dataset.fields)) == ("orders", ("order_id",), 5)


def test_a_huge_declaration_file_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "huge.json").write_bytes(b" " * (64 * 1024 * 1024))
    tracemalloc.start()
    try:
        with pytest.raises(InvalidDeclaration, match=f"huge.json: the declaration is larger than {MAX_BYTES} bytes"):
            read_declaration_directory(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, peak


@pytest.mark.parametrize(("text", "syntax", "bound"), HOSTILE[:5])
async def test_put_datasets_answers_a_declaration_past_a_bound_with_a_422_naming_it(
    stack: Stack, text: str, syntax: str, bound: str
) -> None:
    started = time.monotonic()
    response = await stack.client.put(
        "/datasets/x", content=text.encode(), headers={"content-type": f"application/{syntax}"}
    )
    assert_problem(response, 422)
    assert bound in response.json()["detail"]
    assert time.monotonic() - started < 2


async def test_put_datasets_answers_a_body_past_the_size_bound_with_a_413(stack: Stack) -> None:
    body = HEAD.encode() + b"#" * MAX_BYTES
    response = await stack.client.put("/datasets/x", content=body, headers={"content-type": "application/toml"})
    assert_problem(response, 413)
    assert f"at most {MAX_BYTES} bytes" in response.json()["detail"]


def test_migrate_refuses_a_declaration_file_past_a_bound_in_one_line(migrated: str, tmp_path: Path) -> None:
    (tmp_path / "dotted.toml").write_text(DOTTED)
    env = {"PATH": "/usr/bin:/bin", "INGESTRO_DATABASE_URL": migrated, "INGESTRO_DATASETS_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "ingestro", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ingestro migrate: {tmp_path / 'dotted.toml'}: a dotted key has more than 16 segments"
    ]
