"""``python -m ingestro.devtools.bench`` (``make bench ARGS=...``): run the benchmark once and report it.

Exit status: 0 when every count is exact, 1 when one is not, 2 when the run could not finish.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from ingestro import logs
from ingestro.config import ENVIRONMENT
from ingestro.devtools.bench.profile import Profiler, ProfilerMissing
from ingestro.devtools.bench.report import comparison_json, format_comparison, format_report
from ingestro.devtools.bench.run import Options, run_bench
from ingestro.devtools.bench.stack import BenchError, Topology
from ingestro.devtools.servers import ServerError
from ingestro.formats.readers import TEXT_FORMATS
from ingestro.streams.names import DATA_GROUP, ERRORS_GROUP, JOBS_GROUP, PARSER_GROUP

#: The size the issue's targets are set for; a run takes one to two minutes on a 2-core machine.
DEFAULT_ROWS = 1_000_000
#: (option, consumer group, default processes). Two data processes: in the issue's measurements the
#: COPY upsert went faster on two connections than on one.
_PROCESSES = (
    ("parsers", PARSER_GROUP, 1),
    ("data", DATA_GROUP, 2),
    ("errors", ERRORS_GROUP, 1),
    ("jobs", JOBS_GROUP, 1),
)


def _positive(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of bytes (0 or more)")
    return value


def _counts(text: str) -> list[int]:
    """``1,2,4``: process counts, each positive, in the order given."""
    try:
        counts = [_positive(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive numbers") from None
    if not counts:
        raise argparse.ArgumentTypeError("give at least one count")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingestro.devtools.bench",
        description=(
            "Generate a seeded contacts file, run Ingestro on private durable servers (every part its own "
            "process), upload the file over HTTP, wait for the job, check the counts, and report throughput, "
            "memory and CPU against a raw COPY of the same rows in the same run."
        ),
    )
    parser.add_argument("--rows", type=_positive, default=DEFAULT_ROWS, help="rows in the file (default: %(default)s)")
    parser.add_argument("--format", choices=TEXT_FORMATS, default="csv", help="file format (default: %(default)s)")
    for option, group, default in _PROCESSES:
        parser.add_argument(
            f"--{option}",
            type=_positive,
            default=default,
            help=f"processes of the {group} consumer (default: %(default)s)",
        )
    parser.add_argument(
        "--data-processes",
        type=_counts,
        metavar="N,N,…",
        help="run once per count of data-projection processes (e.g. 1,2,4), each on fresh servers, and compare "
        "their rows/s (overrides --data)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive,
        default=int(ENVIRONMENT["INGESTRO_BATCH_SIZE"][1]),
        help="rows per RowsAccepted/RowsRejected event (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=int(ENVIRONMENT["INGESTRO_CONCURRENCY"][1]),
        help="entries each consumer process handles at once (default: %(default)s)",
    )
    parser.add_argument(
        "--range-bytes",
        type=_non_negative,
        metavar="BYTES",
        help="INGESTRO_PARSE_RANGE_BYTES: one file is parsed in ranges of this size by all the parsers (0: by one); "
        "default: a quarter of the file per parser process, 0 with one",
    )
    parser.add_argument("--seed", type=int, default=42, help="sample seed (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--staged",
        action="store_true",
        help="start the projections only once the parser is done, to time each stage alone "
        "(end to end is then their sum)",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also time pgloader loading the same file into a table of the dataset's fields, in the same run, and "
        "report end to end as a ratio to it (CSV only; pgloader is installed with apt-get when absent)",
    )
    parser.add_argument(
        "--redis-cluster",
        type=_positive,
        metavar="N",
        default=0,
        help="run on a private Redis Cluster of N masters (INGESTRO_REDIS_MODE=cluster; 1 and 2 get their slots "
        "directly) instead of one redis-server; the report gives each node's CPU and memory",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory (servers, uploads, logs)")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy every Ingestro process during the run; collapsed stacks go to DIR (needs py-spy)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.peers and args.format != "csv":
        parser.error("--peers loads CSV only (pgloader's format here): drop --format or --peers")
    logs.configure("WARNING", human=True)
    results = []
    for data in args.data_processes or [args.data]:
        options = Options(
            rows=args.rows,
            format=args.format,
            seed=args.seed,
            topology=Topology(parsers=args.parsers, data=data, errors=args.errors, jobs=args.jobs),
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            keep=args.keep,
            staged=args.staged,
            peers=args.peers,
            range_bytes=args.range_bytes,
            redis_cluster=args.redis_cluster,
        )
        try:
            profile_dir = args.profile / f"data-{data}" if args.profile and args.data_processes else args.profile
            profiler = Profiler(profile_dir) if profile_dir is not None else None
            result = run_bench(options, profiler)
        except (BenchError, ServerError, ProfilerMissing) as error:
            print(f"bench: {error}", file=sys.stderr)
            return 2
        print(format_report(result), flush=True)
        results.append(result)
    if args.data_processes:
        print("\n" + format_comparison(results), flush=True)
    if args.json is not None:
        document = comparison_json(results) if args.data_processes else results[0].to_json()
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return 0 if all(result.counts_exact for result in results) else 1
