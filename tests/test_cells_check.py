"""A CSV row is checked by position, from its cells, with no record made.

``CompiledDataset.cells_check`` must give exactly what ``check`` gives the record the
cells make (values, hash, errors), whatever the header's order, the columns it lacks
and the unknown columns it keeps; ``CsvRow.record`` is that record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestro.datasets import EXTRA_COLUMNS, Dataset, declaration_of
from ingestro.datasets.rules import compile_dataset, match_columns
from ingestro.formats.csv_rows import CsvRow
from ingestro.formats.readers import RowReader


def shop(unknown_columns: str) -> Dataset:
    return declaration_of(
        {
            "name": "shop",
            "unknown_columns": unknown_columns,
            "fields": [
                {"name": "sku", "type": "string", "required": True, "pattern": "[A-Z]+-[0-9]+"},
                {"name": "price", "type": "number", "minimum": 0, "aliases": ["Cost"]},
                {"name": "qty", "type": "integer", "default": 1, "maximum": 99},
                {"name": "kind", "type": "enum", "values": ["a", "b"]},
                {"name": "tags", "type": "json", "default": "[]"},
                {"name": "sold", "type": "date"},
            ],
        }
    )


HEADERS = [
    ["sku", "price", "qty", "kind", "tags", "sold"],
    ["sold", "Cost", "sku", "note", "kind"],  # reordered, an alias, an unknown column, columns missing
    ["x", "sku", "y"],
]
CELLS = st.sampled_from(
    [
        "",
        " ",
        "AB-1",
        "ab-1",
        "3.50",
        "-1",
        "7",
        "100",
        "a",
        "c",
        "[1]",
        "{",
        "2024-02-30",
        "2024-02-03",
        "\x00",
        "\ud800",
        "é",
    ]
)


def record_of(header: list[str], dataset: Dataset, cells: list[str]) -> dict[str, Any]:
    keeps = dataset.unknown_columns.value == "keep"
    match = match_columns(dataset, header)
    record: dict[str, Any] = {name: cells[position] for position, name in match.positions.items()}
    if keeps and match.unknown_positions:
        record[EXTRA_COLUMNS] = {name: cells[position] for position, name in match.unknown_positions.items()}
    return record


@pytest.mark.slow
@pytest.mark.parametrize("unknown_columns", ["ignore", "keep"])
@pytest.mark.parametrize("header", HEADERS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_row_checked_by_position_has_the_outcome_of_its_record(
    unknown_columns: str, header: list[str], data: st.DataObject
) -> None:
    dataset = shop(unknown_columns)
    compiled = compile_dataset(dataset)
    match = match_columns(dataset, header)
    kept = match.unknown_positions if unknown_columns == "keep" else {}
    cells = data.draw(st.lists(CELLS, min_size=len(header), max_size=len(header)))
    by_position = compiled.cells_check(match.positions, kept)(list(cells))
    assert by_position == compiled.check(record_of(header, dataset, cells))


def test_the_cells_are_left_as_read(tmp_path: Path) -> None:
    dataset = shop("keep")
    match = match_columns(dataset, HEADERS[1])
    cells = ["2024-02-03", "3.5", " AB-1 ", "n", "a"]
    values, content_hash, errors = compile_dataset(dataset).cells_check(match.positions, match.unknown_positions)(cells)
    assert cells == ["2024-02-03", "3.5", " AB-1 ", "n", "a"]
    assert errors == [] and content_hash is not None
    assert values[EXTRA_COLUMNS] == {"note": "n"}
    assert values["sku"] == "AB-1" and values["qty"] == 1 and values["tags"] == []


def test_a_csv_row_read_whole_gives_its_record_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("sold,Cost,sku,note,kind\n2024-02-03,3.5,AB-1,n,a\n1,2\n")
    rows = list(RowReader(path, "csv", shop("keep")))
    assert isinstance(rows[0], CsvRow) and not isinstance(rows[1], CsvRow)
    assert rows[0].record == {
        "sold": "2024-02-03",
        "price": "3.5",
        "sku": "AB-1",
        "kind": "a",
        EXTRA_COLUMNS: {"note": "n"},
    }
    assert rows[0].raw == ["2024-02-03", "3.5", "AB-1", "n", "a"] and rows[0].error is None
    assert rows[1].record is None and rows[1].error is not None and rows[1].error.code == "field_count"
