"""A benchmark run's figures: the table printed on stdout and the JSON written for comparing runs."""

from __future__ import annotations

import os
from typing import Any

import attrs

from ingestro.devtools.bench.baseline import Baseline
from ingestro.devtools.bench.peers import Peer
from ingestro.devtools.bench.profile import Profile
from ingestro.devtools.bench.streams_memory import StreamFigures
from ingestro.devtools.bench.usage import TreeUsage
from ingestro.streams.names import DATA_GROUP

_MB = 1024 * 1024
#: The issue's target: end to end at least half as fast as raw COPY.
TARGET_RATIO = 0.5
#: And at least twice as fast as pgloader on the same file (``--peers``).
TARGET_PEER_RATIO = 2.0
_PROFILE_LINES = 8


def _rate(amount: float, seconds: float | None) -> float | None:
    return amount / seconds if seconds else None


@attrs.frozen
class Result:
    rows: int
    format: str
    bytes: int
    seed: int
    batch_size: int
    concurrency: int
    #: Processes per consumer group.
    processes: dict[str, int]
    #: Whether the projections started only after the parser finished.
    staged: bool
    counts_exact: bool
    #: What differed from the sample's expected counts; empty when exact.
    mismatches: list[str]
    valid_rows: int
    #: Upload start to the 202 answer (the file is stored and fsynced by then).
    upload_s: float
    #: Upload start to the job's ``finished_at``.
    e2e_s: float
    #: ParseStarted to ParseCompleted; None when the job did not parse to the end.
    parse_s: float | None
    #: First RowsAccepted appended to the last one applied by ``data``.
    projection_s: float | None
    #: ParseCompleted to the job's ``finished_at``: how far the projections trail the parser.
    after_parse_s: float | None
    baseline: Baseline
    usage: dict[str, TreeUsage]
    profiles: dict[str, Profile]
    #: 1-minute load average before and after the run: other work on the machine skews the figures.
    load_average: tuple[float, float]
    #: How long processes were sampled (about upload start to job completed), and the CPU seconds the
    #: whole machine was busy meanwhile, ours included: the rest was other work.
    sampled_s: float
    machine_cpu_s: float
    #: Redis bytes per row, peak backlog, the codec's CPU per row; None: not measured (an older report).
    streams: StreamFigures | None = None
    #: pgloader's load of the same file in the same run (``--peers``), else None.
    peer: Peer | None = None

    @property
    def e2e_rows_per_s(self) -> float:
        return self.rows / self.e2e_s

    @property
    def cpu_s(self) -> float:
        """CPU time of every measured process together."""
        return sum(usage.cpu_s for usage in self.usage.values())

    @property
    def ratio(self) -> float:
        return self.e2e_rows_per_s / self.baseline.rows_per_s

    @property
    def peer_ratio(self) -> float | None:
        """End to end as a multiple of the peer's rate; None without a peer."""
        return self.e2e_rows_per_s / self.peer.rows_per_s if self.peer is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "format": self.format,
            "bytes": self.bytes,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "concurrency": self.concurrency,
            "processes": self.processes,
            "staged": self.staged,
            "counts_exact": self.counts_exact,
            "mismatches": self.mismatches,
            "upload_s": self.upload_s,
            "upload_mb_per_s": self.bytes / _MB / self.upload_s,
            "e2e_s": self.e2e_s,
            "e2e_rows_per_s": self.e2e_rows_per_s,
            "parse_s": self.parse_s,
            "parser_rows_per_s": _rate(self.rows, self.parse_s),
            "projection_s": self.projection_s,
            "projection_rows_per_s": _rate(self.valid_rows, self.projection_s),
            "after_parse_s": self.after_parse_s,
            "baseline_rows": self.baseline.rows,
            "baseline_s": self.baseline.seconds,
            "baseline_rows_per_s": self.baseline.rows_per_s,
            "baseline_all_s": list(self.baseline.all_seconds),
            "ratio": self.ratio,
            "peer": self.peer.name if self.peer is not None else None,
            "peer_s": self.peer.seconds if self.peer is not None else None,
            "peer_rows_loaded": self.peer.loaded if self.peer is not None else None,
            "peer_rows_per_s": self.peer.rows_per_s if self.peer is not None else None,
            "peer_ratio": self.peer_ratio,
            # MB here are MiB, like the kernel's kB are KiB.
            "peak_rss_mb": {name: usage.peak_process_kb / 1024 for name, usage in self.usage.items()},
            "peak_total_mb": {name: usage.peak_total_kb / 1024 for name, usage in self.usage.items()},
            "cpu_s": {name: usage.cpu_s for name, usage in self.usage.items()},
            # What bounds throughput on a small machine: all processes' CPU per row of the file.
            "cpu_us_per_row": 1e6 * self.cpu_s / self.rows,
            "cores_busy": self.cpu_s / self.sampled_s,
            "machine_cores_busy": self.machine_cpu_s / self.sampled_s,
            "cpus": os.cpu_count(),
            "profiles": {label: attrs.asdict(profile) for label, profile in self.profiles.items()},
            "load_average": list(self.load_average),
            "streams": attrs.asdict(self.streams) if self.streams is not None else None,
        }


def _figure(value: float | None, unit: str, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f} {unit}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"({value:.2f} s)"


def format_report(result: Result) -> str:
    """The run as a table for people."""
    data = result.to_json()
    groups = ", ".join(f"{group} {count}" for group, count in result.processes.items())
    lines = [
        f"Ingestro benchmark: {result.rows:,} {result.format} rows ({result.bytes / _MB:.1f} MB), seed {result.seed}",
        f"  processes: {groups}; batch {result.batch_size}; concurrency {result.concurrency}"
        + ("; staged (projections started after the parse)" if result.staged else ""),
        f"  load average before/after: {result.load_average[0]:.2f} / {result.load_average[1]:.2f}",
        "",
        f"  {'counts exact':<24}{'yes' if result.counts_exact else 'NO'}",
        *(f"    {mismatch}" for mismatch in result.mismatches),
        f"  {'upload':<24}{_figure(data['upload_mb_per_s'], 'MB/s', 1):>18}  {_seconds(result.upload_s)}",
        f"  {'end to end':<24}{_figure(data['e2e_rows_per_s'], 'rows/s'):>18}  {_seconds(result.e2e_s)}",
        f"  {'parser':<24}{_figure(data['parser_rows_per_s'], 'rows/s'):>18}  {_seconds(result.parse_s)}",
        f"  {'data projection':<24}{_figure(data['projection_rows_per_s'], 'rows/s'):>18}  "
        f"{_seconds(result.projection_s)}",
        f"  {'done after parse':<24}{_figure(result.after_parse_s, 's', 2):>18}",
        f"  {'baseline COPY':<24}{_figure(result.baseline.rows_per_s, 'rows/s'):>18}  "
        f"{_seconds(result.baseline.seconds)}, {result.baseline.rows:,} distinct rows,"
        f" best of {len(result.baseline.all_seconds) or 1}",
        f"  {'ratio e2e / baseline':<24}{result.ratio:>11.2f}         (target >= {TARGET_RATIO})",
        *_stream_lines(result.streams),
        *_peer_lines(result),
        "",
        f"  {'process':<16}{'peak RSS MB':>12}{'total MB':>10}{'CPU s':>8}{'CPU us/row':>12}{'procs':>7}",
    ]
    for name, usage in result.usage.items():
        lines.append(
            f"  {name:<16}{usage.peak_process_kb / 1024:>12.1f}{usage.peak_total_kb / 1024:>10.1f}"
            f"{usage.cpu_s:>8.1f}{1e6 * usage.cpu_s / result.rows:>12.1f}{usage.processes:>7}"
        )
    lines.append(
        f"  {'all':<16}{'':>22}{result.cpu_s:>8.1f}{data['cpu_us_per_row']:>12.1f}"
        f"   ({data['cores_busy']:.2f} cores busy on average; the machine: {data['machine_cores_busy']:.2f}"
        f" of {data['cpus']})"
    )
    for label, profile in result.profiles.items():
        lines += ["", f"  {label}: {profile.samples} samples; self % (innermost function)"]
        lines += [f"    {share:5.1f}  {frame}" for frame, share in profile.self_pct[:_PROFILE_LINES]]
    return "\n".join(lines)


def _stream_lines(figures: StreamFigures | None) -> list[str]:
    if figures is None:
        return []
    return [
        f"  {'redis per accepted row':<24}{_figure(figures.redis_bytes_per_row, 'bytes', 1):>18}",
        f"  {'peak row backlog':<24}{figures.peak_backlog:>11,} entries",
        f"  {'codec per row':<24}{_figure(figures.encode_us_per_row, 'us', 2):>18}  encode (parser),"
        f" {_figure(figures.decode_us_per_row, 'us', 2)} decode (projection)",
    ]


def _peer_lines(result: Result) -> list[str]:
    if result.peer is None or result.peer_ratio is None:
        return []
    return [
        f"  {result.peer.name:<24}{_figure(result.peer.rows_per_s, 'rows/s'):>18}  {_seconds(result.peer.seconds)},"
        f" {result.peer.loaded:,} rows loaded",
        f"  {'ratio e2e / ' + result.peer.name:<24}{result.peer_ratio:>11.2f}         (target >= {TARGET_PEER_RATIO})",
    ]


def format_comparison(results: list[Result]) -> str:
    """One line per run, by data-projection processes: how the projection scales."""
    lines = [
        f"Data-projection processes compared ({results[0].rows:,} {results[0].format} rows each;"
        f" concurrency {results[0].concurrency} per process"
        + ("; staged: the projections timed alone" if results[0].staged else "")
        + ")",
        f"  {'data processes':<16}{'end to end rows/s':>20}{'data projection rows/s':>25}"
        f"{'CPU us/row':>12}{'exact':>7}",
    ]
    for result in results:
        data = result.to_json()
        lines.append(
            f"  {result.processes.get(DATA_GROUP, 0):<16}{_figure(data['e2e_rows_per_s'], ''):>20}"
            f"{_figure(data['projection_rows_per_s'], ''):>25}{data['cpu_us_per_row']:>12.1f}"
            f"{'yes' if result.counts_exact else 'NO':>7}"
        )
    return "\n".join(lines)


def comparison_json(results: list[Result]) -> dict[str, Any]:
    """Every run in full, and rows/s by data-projection processes."""
    return {
        "runs": [result.to_json() for result in results],
        "by_data_processes": {
            str(result.processes.get(DATA_GROUP, 0)): {
                "e2e_rows_per_s": result.e2e_rows_per_s,
                "projection_rows_per_s": result.to_json()["projection_rows_per_s"],
                "cpu_us_per_row": result.to_json()["cpu_us_per_row"],
                "counts_exact": result.counts_exact,
            }
            for result in results
        },
    }
