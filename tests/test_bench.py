"""A tiny ``make bench`` run, end to end, so the benchmark keeps working. Its figures are not checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]

REQUIRED_KEYS = {
    "rows",
    "format",
    "e2e_rows_per_s",
    "baseline_rows_per_s",
    "ratio",
    "upload_mb_per_s",
    "counts_exact",
    "peak_rss_mb",
}


def test_a_small_run_reports_exact_counts(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    # A process of its own, as `make bench` runs it: the bench configures logging and runs event loops.
    run = subprocess.run(
        [sys.executable, "-m", "ingestro.devtools.bench", "--rows", "5000", "--data", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    result = orjson.loads(out.read_bytes())
    assert result.keys() >= REQUIRED_KEYS
    assert result["rows"] == 5000 and result["format"] == "csv"
    assert result["counts_exact"] is True, result["mismatches"]
    processes = {"api", "parser-0", "data-0", "errors-0", "jobs-0", "redis-server", "postgres"}
    assert processes <= result["peak_rss_mb"].keys()
    assert all(megabytes > 0 for megabytes in result["peak_rss_mb"].values())
    assert "counts exact" in run.stdout
    # The row streams' cost, measured in the same run: compact batches take less Redis than their CSV bytes.
    streams = result["streams"]
    assert 0 < streams["redis_bytes_per_row"] < result["bytes"] / result["rows"]
    assert streams["peak_backlog"] >= 0
    assert streams["encode_us_per_row"] > 0 and streams["decode_us_per_row"] > 0
    assert "redis per accepted row" in run.stdout and "peak row backlog" in run.stdout
