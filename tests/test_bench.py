"""A tiny ``make bench`` run, end to end, so the benchmark keeps working. Its figures are not checked."""

from __future__ import annotations

import shutil
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


@pytest.mark.skipif(shutil.which("pgloader") is None, reason="pgloader is not installed (apt-get install pgloader)")
def test_peers_time_pgloader_on_the_same_file_and_report_the_ratio(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    bench = [sys.executable, "-m", "ingestro.devtools.bench"]
    run = subprocess.run(
        [*bench, "--rows", "5000", "--data", "1", "--peers", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    result = orjson.loads(out.read_bytes())
    assert result["counts_exact"] is True, result["mismatches"]
    assert result["peer"] == "pgloader"
    # pgloader loads what PostgreSQL's types accept: at least every distinct valid row, at most every row.
    assert result["baseline_rows"] <= result["peer_rows_loaded"] <= 5000
    assert result["peer_rows_per_s"] > 0
    assert result["peer_ratio"] == pytest.approx(result["e2e_rows_per_s"] / result["peer_rows_per_s"])
    assert "ratio e2e / pgloader" in run.stdout


def test_peers_refuse_a_format_pgloader_is_not_given() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ingestro.devtools.bench", "--format", "ndjson", "--peers"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2 and "--peers loads CSV only" in run.stderr


def test_a_run_on_a_private_redis_cluster_reports_each_node(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    bench = [sys.executable, "-m", "ingestro.devtools.bench", "--rows", "3000", "--data", "1", "--redis-cluster", "3"]
    run = subprocess.run([*bench, "--json", str(out)], capture_output=True, text=True, timeout=120, check=False)

    assert run.returncode == 0, run.stdout + run.stderr
    result = orjson.loads(out.read_bytes())
    assert result["counts_exact"] is True, result["mismatches"]
    assert {"redis-node-0", "redis-node-1", "redis-node-2"} <= result["cpu_s"].keys()
    assert "redis-server" not in result["cpu_s"]
