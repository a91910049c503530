"""The benchmark's comparison of data-projection process counts: `--data-processes 1,2,4` in one invocation."""

from __future__ import annotations

import pytest

from ingestro.devtools.bench.baseline import Baseline
from ingestro.devtools.bench.cli import build_parser
from ingestro.devtools.bench.report import Result, comparison_json, format_comparison


def result(data_processes: int, e2e_s: float, projection_s: float) -> Result:
    return Result(
        rows=10_000,
        format="csv",
        bytes=1_000_000,
        seed=42,
        batch_size=500,
        concurrency=2,
        processes={"parser": 1, "data": data_processes, "errors": 1, "jobs": 1},
        staged=False,
        counts_exact=True,
        mismatches=[],
        valid_rows=9_000,
        upload_s=0.1,
        e2e_s=e2e_s,
        parse_s=1.0,
        projection_s=projection_s,
        after_parse_s=0.2,
        baseline=Baseline(9_000, 0.1),
        usage={},
        profiles={},
        load_average=(0.5, 0.5),
        sampled_s=1.0,
        machine_cpu_s=1.0,
    )


def test_the_option_takes_a_list_of_process_counts() -> None:
    assert build_parser().parse_args(["--data-processes", "1,2,4"]).data_processes == [1, 2, 4]
    assert build_parser().parse_args([]).data_processes is None
    for bad in ("0,2", "two", ","):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--data-processes", bad])


def test_rows_per_second_are_reported_per_count_in_the_table_and_the_json() -> None:
    results = [result(1, 2.0, 1.0), result(2, 1.0, 0.5), result(4, 0.8, 0.45)]

    table = format_comparison(results).splitlines()
    document = comparison_json(results)

    assert [line.split()[:3] for line in table[2:]] == [
        ["1", "5,000", "9,000"],
        ["2", "10,000", "18,000"],
        ["4", "12,500", "20,000"],
    ]
    assert document["by_data_processes"]["2"]["e2e_rows_per_s"] == 10_000
    assert document["by_data_processes"]["4"]["projection_rows_per_s"] == 20_000
    assert [run["processes"]["data"] for run in document["runs"]] == [1, 2, 4]
