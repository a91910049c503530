"""Draft declarations inferred from a sample (``ingestro.datasets.inference``), and the sample reader."""

from __future__ import annotations

import tomllib

import pytest

from ingestro.datasets import FieldType, parse_declaration
from ingestro.datasets.inference import declaration_toml, field_name, infer_dataset, infer_type
from ingestro.datasets.rules import check_row
from ingestro.formats.sample import UnreadableSample, read_sample

ORDERS = (
    b"Order ID;Customer E-mail;Total;Ordered on;Paid;Placed at;Notes;Tags\n"
    b"6f1c2b7e-0d3a-4c55-9a57-0b3e8d7c1a01;ann@example.com;12.50;13/04/2024;yes;2024-04-13T10:00:00Z;;[1]\n"
    b"6f1c2b7e-0d3a-4c55-9a57-0b3e8d7c1a02;bob@example.com;7;01/05/2024;no;2024-05-01 09:30;rush;[]\n"
    b"6f1c2b7e-0d3a-4c55-9a57-0b3e8d7c1a03;cy@example.com;100;28/02/2024;Yes;2024-02-28T23:59:59+01:00;;[2,3]\n"
)


def test_each_type_is_the_narrowest_that_takes_every_value() -> None:
    assert infer_type(["1", " 42 ", "-7"]) == (FieldType.INTEGER, ())
    assert infer_type(["1", "2.5"]) == (FieldType.NUMBER, ())
    assert infer_type(["0", "1"]) == (FieldType.INTEGER, ())  # 0/1 alone says number more than yes/no
    assert infer_type(["yes", "No", "TRUE"]) == (FieldType.BOOLEAN, ())
    assert infer_type([True, False]) == (FieldType.BOOLEAN, ())
    assert infer_type(["2024-04-13", "2024-01-01"]) == (FieldType.DATE, ("%Y-%m-%d",))
    assert infer_type(["13/04/2024", "01/05/2024"]) == (FieldType.DATE, ("%d/%m/%Y",))
    assert infer_type(["04/13/2024", "01/05/2024"]) == (FieldType.DATE, ("%m/%d/%Y",))
    assert infer_type(["2024-01-05", "3 Mar 2024"]) == (FieldType.DATE, ())  # built-in formats, mixed
    assert infer_type(["2024-04-13T10:00:00Z", "2024-04-13 09:30"]) == (FieldType.DATETIME, ())
    assert infer_type(["A@Example.com", "b@example.org"]) == (FieldType.EMAIL, ())
    assert infer_type(["6F1C2B7E-0D3A-4C55-9A57-0B3E8D7C1A01"]) == (FieldType.UUID, ())
    assert infer_type(['{"a": 1}', "[1, 2]"]) == (FieldType.JSON, ())
    assert infer_type([{"a": 1}, 3]) == (FieldType.JSON, ())
    assert infer_type([1, 2.5]) == (FieldType.NUMBER, ())
    assert infer_type([True, "x"]) == (FieldType.STRING, ())
    assert infer_type(["12", "twelve"]) == (FieldType.STRING, ())
    assert infer_type([]) == (FieldType.STRING, ())


def test_headers_become_field_names_with_the_header_kept_as_an_alias() -> None:
    assert field_name("Customer E-mail", 0) == "customer_e_mail"
    assert field_name("Prénom", 0) == "prenom"
    assert field_name("2nd line", 0) == "_2nd_line"
    assert field_name("***", 4) == "column_5"
    assert field_name("content_hash", 0) == "content_hash_value"  # a bookkeeping column's name is taken
    draft = infer_dataset("people", ["Prénom", "email", "E-mail "], [{"Prénom": "A", "email": "a@x.io", "E-mail ": ""}])
    assert [(f.name, f.aliases) for f in draft.dataset.fields] == [
        ("prenom", ("Prénom",)),
        ("email", ()),
        ("e_mail", ("E-mail",)),
    ]


def test_a_draft_of_a_sample_accepts_that_sample() -> None:
    sample = read_sample(ORDERS, "csv")
    draft = infer_dataset("orders", sample.columns, sample.rows)
    fields = {field.name: field for field in draft.dataset.fields}
    assert {name: (field.type, field.formats, field.required) for name, field in fields.items()} == {
        "order_id": (FieldType.UUID, (), True),
        "customer_e_mail": (FieldType.EMAIL, (), True),
        "total": (FieldType.NUMBER, (), True),
        "ordered_on": (FieldType.DATE, ("%d/%m/%Y",), True),
        "paid": (FieldType.BOOLEAN, (), True),
        "placed_at": (FieldType.DATETIME, (), True),
        "notes": (FieldType.STRING, (), False),  # empty in two rows
        "tags": (FieldType.JSON, (), True),
    }
    # Present and distinct, and an identifier: the id first; a number, date, flag or JSON is never a key.
    assert draft.candidate_keys == ("order_id", "customer_e_mail")
    assert draft.rows_sampled == 3
    for row in sample.rows:
        record = {fields[name].name: row[column] for column, name in zip(sample.columns, fields, strict=True)}
        assert check_row(draft.dataset, record).errors == [], row


def test_the_toml_declares_the_same_dataset_and_escapes_what_toml_must() -> None:
    columns = ['quote " and \\ back', "tab\tand\x7f", "plain"]
    draft = infer_dataset("tricky", columns, [{"plain": "1"}])
    text = declaration_toml(draft.dataset, ["first comment", "second\nline"])
    assert text.startswith("# first comment\n# second\n# line\n")
    assert parse_declaration(text, "toml") == draft.dataset
    assert tomllib.loads(text)["fields"][0]["aliases"] == ['quote " and \\ back']


def test_a_repeated_column_is_left_out_and_said() -> None:
    draft = infer_dataset("d", ["id", " ID "], [{"id": "1", " ID ": "2"}])
    assert draft.dataset.field_names == ("id",)
    assert draft.notes == ("column ' ID ' repeats an earlier column and was left out",)


def test_ambiguous_day_month_order_is_noted() -> None:
    draft = infer_dataset("d", ["on"], [{"on": "01/02/2024"}, {"on": "03/04/2024"}])
    assert draft.dataset.field("on").formats == ("%m/%d/%Y",)
    assert any("month first" in note for note in draft.notes)


def test_the_sample_reader_takes_json_arrays_cut_short_and_ndjson_and_skips_what_does_not_parse() -> None:
    cut = b'[{"id": 1, "name": "a"}, {"id": 2, "extra": true}, {"id": 3, "na'
    sample = read_sample(cut, "json")
    assert (sample.columns, len(sample.rows), sample.skipped) == (("id", "name", "extra"), 2, 1)
    lines = b'{"a": 1}\n\nnot json\n[1]\n{"a": 2, "b": "x"}\n{"a": 3'
    sample = read_sample(lines, "ndjson")
    assert (sample.columns, [row["a"] for row in sample.rows], sample.skipped) == (("a", "b"), [1, 2], 3)
    csv_cut = b"\xef\xbb\xbfa|b\n1|2\n\n3|4\n5"
    sample = read_sample(csv_cut, "csv")
    assert (sample.delimiter, sample.columns, sample.rows, sample.skipped) == (
        "|",
        ("a", "b"),
        ({"a": "1", "b": "2"}, {"a": "3", "b": "4"}),
        1,
    )
    for bad, file_format in ((b"\n\n", "csv"), (b"[1, 2]", "json"), (b"nope", "json"), (b"x", "xml")):
        with pytest.raises(UnreadableSample):
            read_sample(bad, file_format)
